"""Stage 4, search: a question read, retrieved, fused, grouped by study, reranked and judged."""
