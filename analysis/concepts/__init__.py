"""Bias in image space (the `concepts` analysis, page "Map"): text probes with CLIP's text tower (`probes`), the 2-D
map of the dataset (`projection`, `cached`), and the removal rate per visual cluster, which it takes from the core
(`analysis.effects.clusters`), since dedup reports the same table."""
