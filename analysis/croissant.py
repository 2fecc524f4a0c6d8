"""The audited dataset described in MLCommons Croissant 1.0 with its Responsible-AI (RAI) vocabulary: how datasets
now state their provenance and the mitigations applied to them, machine-readable for anyone who receives the data.

The file names the manifest (with its sha256) and the fields a record has, and fills the RAI fields from the same
executive summary that opens the report (`analysis/summary.py`), so the two never disagree: what the filters
removed and by which rules (`rai:dataPreprocessingProtocol`), the measured term shifts and visual concepts with
their intervals (`rai:dataBiases`), regurgitation (`rai:dataSocialImpact`), what was not measured and the gates
(`rai:dataLimitations`), the tool and the models that annotated (`rai:machineAnnotationTools`). Plain JSON-LD built
here; `mlcroissant` validates it in the tests and is not needed to write it. The dataset's license and citation
are its owner's to add (the audit cannot know them): mlcroissant lists them as recommended, not required.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from analysis import __version__
from analysis.manifests import COLUMN_ALIASES, read_table
from analysis.summary import ExecutiveSummary, executive_summary
from analysis.workspace import Workspace

# Croissant 1.0's JSON-LD context as mlcroissant writes it, with the RAI prefix.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
ENCODINGS = {".parquet": "application/x-parquet", ".csv": "text/csv", ".tsv": "text/tab-separated-values"}
FIELD_TYPES = {"id": "sc:Text", "caption": "sc:Text", "image": "sc:Text", "url": "sc:URL"}
# Which audits' findings go under which RAI property (by the audit's title in the executive summary).
RAI_FINDINGS = {
    "rai:dataPreprocessingProtocol": ("Removals", "Duplicates", "Known-bad hashes"),
    "rai:dataBiases": ("Bias", "Visual concepts"),
    "rai:dataSocialImpact": ("Regurgitation",),
}


def croissant(
    workspace: Workspace, written_in: Path | None = None, summary: ExecutiveSummary | None = None
) -> dict[str, Any]:
    """The Croissant JSON-LD of the audited original set: its manifest, its record fields and the audit's RAI
    fields. The manifest's `contentUrl` is relative to `written_in`, the folder the file goes to (default: the
    workspace), so that readers such as mlcroissant find the records from there; `summary` defaults to the
    report's executive summary, which runs every analysis like the report."""
    summary = summary or executive_summary(workspace)
    config = workspace.config
    manifest = config.original
    columns = _manifest_columns(manifest)
    found = {name: column for name, column in columns.items() if name in FIELD_TYPES}
    key = "id" if "id" in found else "image"
    source = "fileSet" if manifest.is_dir() else "fileObject"  # an img2dataset output folder: its Parquet shards
    by_audit = {h.audit: h for h in summary.headlines}
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": config.name,
        "description": summary.scope,
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "url": manifest.resolve().as_uri(),
        "version": "1.0.0",
        "dateModified": date.today().isoformat(),  # when this audit's description was written
        "distribution": [
            _file(manifest, summary.fingerprints.get("original", ""), written_in or config.root),
        ],
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": "items",
                "name": "items",
                "description": "One image–caption item of the original set (before the audited filters).",
                "key": {"@id": f"items/{key}"},
                "field": [
                    {
                        "@type": "cr:Field",
                        "@id": f"items/{name}",
                        "name": name,
                        "dataType": FIELD_TYPES[name],
                        "source": {source: {"@id": "original-manifest"}, "extract": {"column": column}},
                    }
                    for name, column in found.items()
                ],
            }
        ],
        "rai:dataCollection": summary.scope,
        "rai:machineAnnotationTools": [
            f"pretrain-audit {__version__}",
            f"image embedder {config.embedder}",
            *[f"score {name}" for name in config.computed_scores],
        ],
        "rai:dataLimitations": [
            *[f"{h.audit}: not measured: {h.not_measured}" for h in summary.not_measured],
            f"Gates: {summary.gates_verdict}" if summary.gates_verdict else "",
            "SYNTHETIC sample: not real training data." if config.synthetic else "",
        ],
    }
    for prop, audits in RAI_FINDINGS.items():
        document[prop] = [f"{a}: {by_audit[a].finding}" for a in audits if a in by_audit and by_audit[a].finding]
    if config.filtered.defined:
        document["rai:dataPreprocessingProtocol"].insert(0, "Filters: " + "; ".join(config.filtered.describe()))
    contamination = by_audit.get("Contamination")
    if (
        contamination is not None and contamination.finding
    ):  # evaluation data inside: scores measured on it are inflated
        document["rai:dataLimitations"].insert(0, f"Evaluation-set contamination: {contamination.finding}")
    document["rai:dataLimitations"] = [line for line in document["rai:dataLimitations"] if line]
    return document


def _manifest_columns(path: Path) -> dict[str, str]:
    """Canonical name → the column as the file spells it (LAION's TEXT is the caption, img2dataset's key the id)."""
    present = list(read_table(path).columns)
    return {
        name: next(column for column in aliases if column in present)
        for name, aliases in COLUMN_ALIASES.items()
        if any(column in present for column in aliases)
    }


def _file(path: Path, sha256: str, written_in: Path) -> dict[str, Any]:
    if path.is_dir():
        return {
            "@type": "cr:FileSet",
            "@id": "original-manifest",
            "name": "original-manifest",
            "description": "The original manifest the audit read: the Parquet shards of an img2dataset output folder.",
            "includes": os.path.join(os.path.relpath(path.resolve(), written_in.resolve()), "*.parquet"),
            "encodingFormat": "application/x-parquet",
        }
    entry: dict[str, Any] = {
        "@type": "cr:FileObject",
        "@id": "original-manifest",
        "name": "original-manifest",
        "description": "The original manifest the audit read (one row per image–caption item).",
        "contentUrl": os.path.relpath(path.resolve(), written_in.resolve()),
        "encodingFormat": ENCODINGS.get(path.suffix.lower(), "application/jsonlines"),
    }
    if sha256:
        entry["sha256"] = sha256
    return entry
