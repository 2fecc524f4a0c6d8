"""The review process of a trust-and-safety team, as an analysis: stratified review queues and the precision
they estimate (`queues`), inter-reviewer agreement (`agreement`), verdicts imported from a file (`imports`), the
state of the review (`summary`), and its CLI command and report section (`contract`). The verdicts themselves
live in the core service `analysis.verdicts`."""
