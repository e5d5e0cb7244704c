"""Where `qa serve` listens, and asking it: a running server answers `qa ask` in milliseconds.

Each server writes `.serving-<key>-<pid>.json` once it listens (removed when it stops), where
<key> names its index folder, into a runtime folder of this user (`$XDG_RUNTIME_DIR` or the
temp folder): never into the index folder, which a reader may only read (a read-only mount). `qa ask` reads those files, skips servers whose process is gone, and calls the first one
that answers through Gradio's HTTP API (`/gradio_api/call/ask`). Only the standard library is
imported here (urllib, json): importing an HTTP client, torch or the search stack would cost
more than the question.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

PREFIX = ".serving-"
#: Seconds `qa ask` waits for a server to take the question before searching itself.
CONNECT_TIMEOUT = 3.0
#: Seconds to wait for an answer (reranking on a busy machine can take several).
ANSWER_TIMEOUT = 30.0


def runtime_folder() -> Path:
    """This user's folder for server files (created private on first use)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"summary-qa-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _key(index_dir: Path) -> str:
    """A short name for an index folder (its resolved path hashed)."""
    return hashlib.sha256(str(Path(index_dir).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def announce(index_dir: Path, host: str, port: int, rerank: str) -> Path:
    """Write this process's server file for `index_dir` into the runtime folder; removed at exit."""
    address = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    path = runtime_folder() / f"{PREFIX}{_key(index_dir)}-{os.getpid()}.json"
    info = {"pid": os.getpid(), "url": f"http://{address}:{port}/", "rerank": rerank}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)
    atexit.register(lambda: path.unlink(missing_ok=True))
    if threading.current_thread() is threading.main_thread():
        # A stop by SIGTERM (systemd, docker stop, a test) runs the atexit cleanup too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return path


def servers(index_dir: Path) -> list[dict]:
    """The servers that say they answer from `index_dir` and whose process is alive."""
    found = []
    try:
        paths = sorted(runtime_folder().glob(f"{PREFIX}{_key(index_dir)}-*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            info = json.loads(path.read_text())
            os.kill(int(info["pid"]), 0)  # signal 0: is it alive?
        except ProcessLookupError:
            continue  # killed without cleaning up
        except PermissionError:
            pass  # alive, another user's
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append(info)
    return found


def ask(
    url: str,
    question: str,
    tags: list[str],
    date_from: str,
    date_to: str,
    k: int,
    connect_timeout: float = ANSWER_TIMEOUT,
) -> dict:
    """Ask the server at `url`; the `/ask` API's JSON. Raises OSError when it cannot answer."""
    body = json.dumps({"data": [question, tags, date_from, date_to, k, ""]}).encode()
    request = urllib.request.Request(url + "gradio_api/call/ask", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=connect_timeout) as response:
        event = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/ask/{event}", timeout=ANSWER_TIMEOUT) as response:
        kind = ""
        for raw in response:  # server-sent events: "event: complete" then "data: [answer]"
            line = raw.decode("utf-8").strip()
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                data = json.loads(line.split(":", 1)[1])
                if kind == "error":
                    raise ValueError(data if isinstance(data, str) else "the server could not answer")
                return data[0]
    raise OSError("the server closed the answer stream early")


def ask_any(index_dir: Path, question: str, tags: list[str], date_from: str, date_to: str, k: int):
    """(answer dict, url) from the first live server of `index_dir`, or (None, "") when none answers."""
    for info in servers(index_dir):
        try:
            return ask(info["url"], question, tags, date_from, date_to, k, CONNECT_TIMEOUT), info["url"]
        except (OSError, urllib.error.URLError, TimeoutError, json.JSONDecodeError, KeyError):
            continue
    return None, ""
