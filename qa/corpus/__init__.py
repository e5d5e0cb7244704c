"""Stage 1, the corpus: summary files read into documents, cut into passages, cited."""
