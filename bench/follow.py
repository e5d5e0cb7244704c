"""How soon a reader serves an update another process wrote: the lag after the manifest switch.

Usage: python bench/follow.py --docs DIR --index DIR [--rounds 5]

DIR must be a copy the bench may edit: each round appends a sentence with a new made-up word to
one summary of `--docs`, runs `qa index` (the writer, in this process) and then asks a reader
(`qa serve --no-update --rerank none`, started once) for that word until an answer quotes it.
The lag is the time from the writer's return (the manifest switch) to the first answer that
quotes the new sentence. Prints the machine, the load and the lag per round, median and spread.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.serve import remote  # noqa: E402
from qa.serve.cli import main as qa  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def _quoted(url: str, word: str) -> bool:
    try:
        answer = remote.ask(url, word, [], "", "", 3)
    except OSError:
        return False
    return any(word in p["text"] for s in answer.get("studies", []) for p in s["passages"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, required=True, help="a copy of the summaries (edited)")
    parser.add_argument("--index", type=Path, required=True, help="an index of that copy")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [sys.executable, "-m", "qa.serve.cli", "serve", "--no-update", "--rerank", "none"]
        + ["--index", str(args.index), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lags = []
    try:
        deadline = time.monotonic() + 120
        while not _quoted(url, "fatigue") and time.monotonic() < deadline:
            time.sleep(0.5)
        target = sorted(args.docs.glob("*.md"))[0]
        for n in range(args.rounds):
            word = f"zorblatine{os.getpid()}x{n}"
            with target.open("a", encoding="utf-8") as f:
                f.write(f"\n\nA follow-up noted the {word} marker in some patients.\n")
            assert qa(["index", "--index", str(args.index), "--quiet"]) == 0
            switched = time.monotonic()
            while not _quoted(url, word):
                if time.monotonic() - switched > 120:
                    raise SystemExit(f"round {n}: the reader never served the update")
                time.sleep(0.05)
            lags.append(time.monotonic() - switched)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("# Reader lag after an update by another process\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.1f}\n"
    )
    print("Lag per round (s): " + ", ".join(f"{lag:.2f}" for lag in lags))
    print(
        f"\nMedian {statistics.median(lags):.2f} s, min {min(lags):.2f} s, max {max(lags):.2f} s "
        f"over {len(lags)} rounds."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
