"""How readable is the map? UMAP of every image against the landmark extension the tool uses at scale, and PCA,
on real photos (../shared/real/photos-coco2014: 4,999 distinct COCO photos, embedded with effnet-lite0).

Readability is measured as neighbourhood preservation: trustworthiness (sklearn, 10 neighbours, cosine in the
embedding space) and the share of each photo's 10 nearest neighbours in the embedding space that are among its 10
nearest on the map.

    python -m bench.map_projection [--workspace DIR] [--write]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import REAL, REPO, emit, replace_section, run_record

START, END = "<!-- map-projection:start -->", "<!-- map-projection:end -->"


def real_photo_workspace(directory: Path) -> Path:
    """The 4,999 distinct photos as a workspace (built and embedded once, then reused)."""
    from analysis.embeddings import prepare
    from analysis.workspace import init_workspace, load_workspace

    if not (directory / "audit.toml").exists():
        photos = sorted((REAL / "photos-coco2014").glob("*.jpg"))
        directory.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"id": [p.stem for p in photos], "image": [p.name for p in photos], "caption": ""})
        frame.to_parquet(directory / "original.parquet")
        init_workspace(directory, original="original.parquet", images_root=str(REAL / "photos-coco2014"), name="photos")
    prepare(load_workspace(directory), progress=True)
    return directory


def neighbour_overlap(vectors: np.ndarray, xy: np.ndarray, k: int = 10) -> float:
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, high = index.search(vectors, k + 1)
    flat = faiss.IndexFlatL2(2)
    flat.add(np.ascontiguousarray(xy, dtype=np.float32))
    _, low = flat.search(np.ascontiguousarray(xy, dtype=np.float32), k + 1)
    return float(np.mean([len(set(a[1:]) & set(b[1:])) / k for a, b in zip(high, low)]))


def _umap_transform(vectors: np.ndarray, landmarks: int) -> np.ndarray:
    """The alternative to our placement: UMAP fitted on the landmarks, `transform` for the rest (more faithful,
    but about 2 ms per image on this machine: half an hour at a million)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap

        from analysis.concepts.projection import REDUCED_DIM, _pca

        chosen = np.sort(np.random.default_rng(0).choice(len(vectors), landmarks, replace=False))
        mean, basis = _pca(vectors[chosen], REDUCED_DIM)
        reducer = umap.UMAP(n_components=2, n_neighbors=15, metric="cosine", random_state=0)
        reducer.fit((vectors[chosen] - mean) @ basis)
        xy = np.zeros((len(vectors), 2), dtype=np.float32)
        xy[chosen] = reducer.embedding_
        rest = np.setdiff1d(np.arange(len(vectors)), chosen)
        xy[rest] = reducer.transform((vectors[rest] - mean) @ basis)
    return xy


def measure(vectors: np.ndarray) -> list[dict]:
    from sklearn.manifold import trustworthiness

    from analysis.concepts.projection import project

    n = len(vectors)
    rows = []
    for name, landmarks in (
        ("UMAP of every photo", n),
        ("UMAP of 1,000 landmarks + placement", 1000),
        ("UMAP of 500 landmarks + placement", 500),
    ):
        started = time.perf_counter()
        xy = project(vectors, np.ones(n, dtype=bool), landmarks=landmarks).xy
        rows.append({"projection": name, "seconds": time.perf_counter() - started, "xy": xy})
    started = time.perf_counter()
    rows.append({"projection": "UMAP of 1,000 landmarks + umap's own transform", "xy": _umap_transform(vectors, 1000)})
    rows[-1]["seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    rows.append(
        {"projection": "PCA (2 components)", "seconds": time.perf_counter() - started, "xy": centred @ vt[:2].T}
    )
    for row in rows:
        xy = row.pop("xy")
        row["trustworthiness"] = float(trustworthiness(vectors, xy, n_neighbors=10, metric="cosine"))
        row["neighbours_kept"] = neighbour_overlap(vectors, xy)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/map-projection-bench"))
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    options = parser.parse_args()
    from analysis.embedding_store import load_embeddings
    from analysis.workspace import load_workspace

    workspace = load_workspace(real_photo_workspace(options.workspace))
    found = load_embeddings(workspace)
    assert found is not None
    vectors = np.ascontiguousarray(found.vectors[found.valid])
    rows = measure(vectors)
    record = run_record("python -m bench.map_projection --write")
    emit({"n_photos": len(vectors), "rows": rows, **record})
    if options.write:
        table = "\n".join(
            f"| {r['projection']} | {r['trustworthiness']:.3f} | {r['neighbours_kept']:.1%} | {r['seconds']:.1f} |"
            for r in rows
        )
        section = (
            f"{START}\n### Map projection on real photos\n\n"
            f"{len(vectors):,} distinct COCO photos (`../shared/real/photos-coco2014`), effnet-lite0 embeddings; "
            f"commit {record['commit']}, {record['date']}, `{record['command']}`. Trustworthiness (sklearn, 10 "
            "neighbours) and "
            "the share of each photo's 10 nearest neighbours (cosine) that stay among its 10 nearest on the map.\n\n"
            "| projection | trustworthiness | neighbours kept | seconds |\n| --- | --- | --- | --- |\n"
            f"{table}\n{END}"
        )
        replace_section(REPO / "docs" / "benchmarks.md", START, END, section)


if __name__ == "__main__":
    main()
