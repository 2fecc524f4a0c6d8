"""Image scorers that run inside the tool (Yahoo's open_nsfw today): a probability per image, cached by image
fingerprint, written into the workspace as a score column that filters and the filter builder can use."""
