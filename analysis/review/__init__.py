"""The review process of a trust-and-safety team: the append-only store of verdicts and reveals (`store`),
stratified review queues and the precision they estimate (`queues`), decisions from several reviewers and an
adjudicator (`decisions`), inter-reviewer agreement (`agreement`), exposure limits (`exposure`), and its CLI
command and report section (`contract`)."""
