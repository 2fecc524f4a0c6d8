"""Copy detection on pixels: the second stage behind embedding candidates (local features verified by a
geometric model), PDQ perceptual hashes and hash-list matching. Used by dedup and regurgitation."""
