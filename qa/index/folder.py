"""The summaries folder an index follows (recorded in its manifest), and the one writer's lock."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from qa.corpus.documents import LoadResult, is_summary_name, safe_text
from qa.errors import IndexStateError
from qa.index.files import MANIFEST, check_folder

if TYPE_CHECKING:
    from qa.index.store import Index

SWITCH_HINT = "--switch-docs"


def recorded_docs(index_dir: Path) -> Path | None:
    """The summaries folder the index in `index_dir` was built from, if it records one."""
    try:
        recorded = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8")).get("docs")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(recorded) if isinstance(recorded, str) and recorded else None


def _switch_refusal(index_dir: Path, recorded: Path, docs: Path, indexed: dict) -> IndexStateError:
    try:
        present = {safe_text(p.name) for p in docs.iterdir() if is_summary_name(p.name)}
    except OSError:
        present = set()
    lost = len(set(indexed) - present)
    return IndexStateError(
        f"the index in {safe_text(str(index_dir))} follows the summaries in "
        f"{safe_text(str(recorded))}, not {safe_text(str(docs.resolve()))}; updating it from there "
        f"would remove {lost} of its {len(indexed)} summaries. Leave out --docs to use "
        f"{safe_text(str(recorded))}, choose another --index, or add {SWITCH_HINT} (or --rebuild) "
        "to make this index follow the new folder"
    )


def resolve_docs(
    index_dir: Path, docs: Path | None, switch: bool = False, default: Path | None = None
) -> Path:
    """The summaries folder a command should read for the index in `index_dir`.

    No `docs`: the folder the index records (else `default`). A `docs` other than the recorded
    one raises `IndexStateError`, naming both folders and what would be removed, unless `switch`.
    """
    recorded = recorded_docs(index_dir)
    if docs is None:
        if recorded is None and default is None:
            raise IndexStateError(f"the index in {index_dir} records no summaries folder: give --docs")
        return recorded or default  # type: ignore[return-value]
    if recorded is not None and docs.resolve() != recorded and not switch:
        try:
            indexed = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))["documents"]
        except (OSError, ValueError, KeyError):
            indexed = {}
        raise _switch_refusal(index_dir, recorded, docs, indexed)
    return docs


@contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """One writer at a time per index folder, across processes (`qa index` beside `serve --watch`)."""
    check_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def guard_update(
    folder: Path, loaded: LoadResult, before: Index | None, broken: set[str], switch: bool
) -> None:
    """Refuse an update that would empty the index, or switch or mostly drop its summaries."""
    known = before.documents if before is not None else {}
    if known and not loaded.documents and not loaded.problems and not loaded.unchanged:
        # An empty or unmounted folder is far likelier than a collection deleted on purpose.
        raise IndexStateError(
            f"no summaries were found, so the index in {folder} ({len(known)} summaries) was left "
            f"as it is; check --docs (to empty the index, delete {folder})"
        )
    if switch or before is None:
        return
    recorded = before.manifest.get("docs")
    if loaded.folder is not None and recorded and Path(recorded) != loaded.folder:
        raise _switch_refusal(folder, Path(recorded), loaded.folder, known)
    gone = set(known) - {d.doc_id for d in loaded.documents} - set(loaded.unchanged) - broken
    if len(gone) > len(known) / 2:
        where = f" in {safe_text(str(loaded.folder))}" if loaded.folder else ""
        raise IndexStateError(
            f"this update would remove {len(gone)} of the {len(known)} summaries in the index in "
            f"{folder} (they are no longer{where}); the index was left as it is. If that is "
            f"meant, run again with {SWITCH_HINT} (or --rebuild)"
        )
