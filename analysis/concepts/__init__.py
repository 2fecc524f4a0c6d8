"""Bias in image space: removal rate per visual cluster (`compute`), text probes with CLIP's text tower (`probes`),
and the 2-D map of the dataset (`projection`)."""
