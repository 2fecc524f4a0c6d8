"""Near-duplicates the DALL·E 2 way: k-means on image embeddings, duplicate pairs searched within clusters."""
