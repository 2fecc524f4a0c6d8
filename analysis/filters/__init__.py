"""The filter builder (DALL·E 2's first mitigation, done inside the tool): a written specification, seed examples,
rounds of active learning over the image embeddings, measured precision and recall, a preview of what the filter
would do to the data's balance, and `apply`, which makes it a score filter of the workspace.

- `definition` — a filter's name and specification, its folder, and its labels (an append-only SQLite store of
  the same design as the review store: concurrent labellers, nothing lost on a crash);
- `model`      — features (image embeddings, optional score columns), logistic regression, cross-validation,
                 weights saved as plain arrays and JSON;
- `seeds`      — candidate images by caption words, by likeness to chosen images, by a score band, by a text prompt;
- `rounds`     — what to label next: a random slice (the unbiased measurement), the most uncertain images,
                 neighbours of positives the model keeps missing, neighbours of known positives;
- `measure`    — precision and recall from the random slice, the ROC curve, a threshold for a target recall, the
                 stop signal;
- `preview`    — the term shifts and per-term removal rates the filter would cause, beside the current ones;
- `compute`    — the steps a user takes (fit, next, apply, export), each reading and writing the filter's folder.
"""
