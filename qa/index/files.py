"""An index folder's files: passages as JSON lines, atomic writes, the manifest switch and clean-up.

Every write goes to a temp file that is renamed into place; `manifest.json`, replaced last,
is the only switch point. A failed write removes what it wrote; `clean_leftovers` removes what a
crash left (temp files, generations that never went live)."""

from __future__ import annotations

import datetime as dt
import errno
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

from qa.corpus.chunking import Chunk
from qa.corpus.documents import Citation, safe_text
from qa.errors import IndexStateError

MANIFEST = "manifest.json"


GENERATION_FILE = re.compile(r"^(?:vectors|chunks|keywords|studies|sentences|delta)-(\d+)")


#: Temp files a crash or a full disk can leave: the manifest's, and the multilingual stage's.
_TEMP = re.compile(r"^\.(?:manifest|multilingual)-.*\.tmp$")


# Files are written with the process's usual mode (0644 under the common umask 022); mkstemp
# would make the manifest 0600 unlike the rest. Read once at import, when no thread runs yet.
_UMASK = os.umask(0)
os.umask(_UMASK)


_FILE_MODE = 0o666 & ~_UMASK


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def chunk_to_json(cid: int, chunk: Chunk) -> str:
    # Chunk and Citation hold only strings and a tuple of strings, so their field dicts serialise
    # as is; dataclasses.asdict deep-copies recursively and took 14 of 17 s per save at 210k passages.
    return json.dumps({"id": cid, **vars(chunk), "citation": vars(chunk.citation)}, ensure_ascii=False)


def chunk_from_json(line: str) -> tuple[int, Chunk]:
    data = json.loads(line)
    cid = data.pop("id")
    citation = data.pop("citation")
    citation["tags"] = tuple(citation.get("tags", ()))
    return cid, Chunk(citation=Citation(**citation), **data)


def generations_of(manifest: dict) -> set[int]:
    """The generations whose files a manifest reads: its base and its deltas."""
    gen = int(manifest["generation"])
    return {int(manifest.get("base", gen)), *(int(g) for g in manifest.get("deltas", []))}


def live_generations(folder: Path) -> set[int]:
    """The generations the live manifest reads (empty when there is no readable manifest)."""
    try:
        return generations_of(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def write_manifest(folder: Path, manifest: dict, written: list[Path]) -> None:
    """Replace `manifest.json` atomically (a temp file renamed over it); temp paths go in `written`."""
    # ASCII JSON: file names that are not UTF-8 are stored escaped, never fail to encode.
    text = json.dumps(manifest, ensure_ascii=True, separators=(",", ":")).encode()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest-", suffix=".tmp")
    written.append(Path(tmp))
    os.close(fd)
    write_file(Path(tmp), text)
    os.replace(tmp, folder / MANIFEST)


def write_file(path: Path, data: bytes) -> None:
    """Write, flush to disk and set the usual mode; a short or failed write raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        os.fchmod(fd, _FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_file(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def size_text(size: int) -> str:
    """A byte count rounded up for people: "256 KB", "3 MB" (a full disk once asked for 1 MB when
    256 KB sufficed)."""
    if size < 1_000_000:
        return f"{max(1, math.ceil(size / 1000))} KB"
    return f"{math.ceil(size / 1e6)} MB"


def write_error(folder: Path, exc: OSError, needed: int) -> IndexStateError:
    """A plain message for a failed index write, with the room to free when the disk is full."""
    where = safe_text(str(folder.resolve()))
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(folder).free
        return IndexStateError(
            f"the disk is full: free {size_text(max(needed - free, 1))} in {where} (the new index files "
            f"need about {size_text(needed)}), then run again; the previous index is unchanged"
        )
    return IndexStateError(
        f"could not write the index in {where} ({exc.strerror or exc}); the previous index is unchanged"
    )


def live_generation(folder: Path) -> int | None:
    """The generation `manifest.json` names, or None when there is no readable manifest."""
    try:
        return int(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_generations(folder: Path, keep: set[int | None] | set[int]) -> None:
    for path in folder.iterdir():
        match = GENERATION_FILE.match(path.name)
        if match and int(match.group(1)) not in keep:
            remove_file(path)


def clean_leftovers(folder: Path, manifest: dict | None = None) -> None:
    """Remove what a crash left: temp files and generations the manifest does not name.

    Only a writer calls this (under the writer lock), so no save is under way meanwhile.
    `manifest`: the live manifest when the caller has just read it (it is 10 MB at 30k summaries).
    """
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if _TEMP.match(path.name):
            remove_file(path)
    try:
        if not manifest:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        live = int(manifest["generation"])
    except FileNotFoundError:
        remove_generations(folder, keep=set())  # a first build that crashed: nothing went live
        return
    except (OSError, ValueError, KeyError, TypeError):
        return  # a damaged manifest: leave the files for whoever inspects or rebuilds it
    # Manifests written before "previous_generation" existed kept the one below the live one.
    previous = manifest.get("previous_files", [manifest.get("previous_generation", live - 1)])
    remove_generations(folder, keep=generations_of(manifest) | set(previous))


def check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise IndexStateError(f"{folder} is a file, not an index folder: choose another --index")


def write_manifest_quietly(folder: Path, manifest: dict) -> None:
    """Write a manifest whose only news is file stats; a failure is not worth failing the update for."""
    written: list[Path] = []
    try:
        write_manifest(folder, manifest, written)
    except OSError:
        for path in written:
            remove_file(path)  # the next update hashes those files again
