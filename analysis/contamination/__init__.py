"""Evaluation-set contamination (issue 49): which images and captions of an evaluation set are in the training set.
A training set that holds copies of its evaluation data inflates every score measured on them (DALL·E 2 was
evaluated with FID on MS-COCO captions and images)."""
