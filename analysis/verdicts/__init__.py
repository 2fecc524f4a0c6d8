"""Reviewer verdicts as a service of the core, used by every analysis whose items people judge (removals,
regurgitation, filter labels): the append-only store of verdicts and reveals with the review kinds and their
verdict vocabularies (`store`), how several reviewers' verdicts become one decision (`decisions`), the exposure
limits on revealing blurred images (`exposure`), and the workspace's `[review]` settings (`settings`)."""
