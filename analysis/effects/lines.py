"""The text summary of a per-cluster removal table, one wording for the filters and for dedup."""

from __future__ import annotations

from analysis.effects.clusters import ClusterRates


def cluster_line(rate, prefix: str = "") -> str:
    words = f" ({', '.join(rate.top_words[:4])})" if rate.top_words else ""
    return (
        f"{prefix}cluster {rate.cluster}{words}: {rate.removed:,} of {rate.size:,} removed ({rate.removal_rate:.1%}, "
        f"95% CI {rate.ci95[0]:.1%}–{rate.ci95[1]:.1%}), lift {rate.lift:.2f}, q = {rate.q_value:.2g}"
    )


LISTED_CLUSTERS = 3  # significant clusters the text summary lists; --json and the page list them all


def table_lines(table: ClusterRates, what: str) -> list[str]:
    """The summary of a per-cluster removal table (for the filters or for dedup)."""
    lines = [
        f"{table.k} visual clusters of {table.n_images:,} images; {what} removed {table.n_removed:,} "
        f"({table.overall_rate:.1%}) overall"
    ]
    raised = table.significant
    if raised:
        shown = raised[:LISTED_CLUSTERS]
        which = f"; the {len(shown)} with the highest lift (all of them: --json)" if len(raised) > len(shown) else ""
        lines.append(
            f"{len(raised)} {'cluster' if len(raised) == 1 else 'clusters'} lost significantly more than that"
            f" (Benjamini–Hochberg q < 0.05){which}:"
        )
        lines += [cluster_line(rate, "  ") for rate in shown]
    else:
        lines.append("no cluster lost significantly more than the overall rate (Benjamini–Hochberg q < 0.05)")
    unranked = sum(1 for c in table.clusters if not c.judgeable)
    if unranked:
        lines.append(f"{unranked} clusters hold fewer than 30 images: shown, not ranked")
    return lines
