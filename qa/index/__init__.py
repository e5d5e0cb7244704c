"""Stage 3, the index: passages, vectors, keywords and sentence vectors on disk, updated by deltas."""
