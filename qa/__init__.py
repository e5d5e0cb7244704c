"""summary-qa: cited answers from plain-language research summaries."""

import os

# Nothing is downloaded at run time: set before any Hugging Face library is imported (gradio
# imports huggingface_hub, which reads these once).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

__version__ = "0.1.0"
