"""Repeated captions: captions that several images carry, before and after filtering (`caption-repeats`).

Why it is audited: a caption repeated across many images is, with duplicated images, what text-to-image models
memorise (Somepalli et al. 2023 found replication concentrated on duplicated captions; Carlini et al. 2023 on
duplicated training examples); filters can raise or lower that share."""
