"""Stage 5, presentation: an answer as text, JSON or escaped HTML with highlights."""
