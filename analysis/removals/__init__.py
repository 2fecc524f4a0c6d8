"""Which rows the filters removed: totals, overlap, rates by caption term, score histograms, the gallery."""
