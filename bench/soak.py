"""Does a server's memory stay flat under many varied questions? A bounded soak.

Usage: python bench/soak.py --index DIR [--requests 5000] [--rerank none]

Starts `qa serve --no-update` on the index and asks it `--requests` questions through the `/ask`
API, one after another: ordinary questions, pasted paragraphs, punctuation runs, other scripts,
emoji, each made unique so no cache answers twice. Prints the server's resident memory (VmRSS)
after warm-up and at every 1,000 requests, and the share it grew between request 1,000 and the
last (the target: within 10 %).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.serve import remote  # noqa: E402
from tests.conftest import free_port  # noqa: E402

ORDINARY = [
    "Does pacing help?",
    "Has any antiviral helped ME/CFS patients?",
    "What causes post-exertional malaise?",
    "Is there a blood test for ME/CFS?",
    "Hilft niedrig dosiertes Naltrexon bei Fatigue?",
    "¿Ayuda el ejercicio en el COVID persistente?",
]


def question(n: int, rng: random.Random) -> str:
    """The n-th question: one of several kinds, with a number so that each is new."""
    kind = n % 5
    if kind == 0:
        return f"{rng.choice(ORDINARY)} ({n})"
    if kind == 1:
        return " ".join(
            rng.choice(["fatigue", "immune", "sleep", "heart", "brain", "gut"]) for _ in range(120)
        )
    if kind == 2:
        return "".join(rng.choice("?!.,;:()[]{}<>/\\|") for _ in range(300)) + str(n)
    if kind == 3:
        return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(200)) + str(n)
    return "".join(chr(rng.randint(0x1F300, 0x1F5FF)) for _ in range(50)) + f" pacing {n}"


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rerank", default="none", help="the server's reranker (none: many requests fast)")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [sys.executable, "-m", "qa.serve.cli", "serve", "--no-update", "--rerank", args.rerank]
        + ["--index", str(args.index), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rng, rows, failures = random.Random(7), [], 0
    start = time.monotonic()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                remote.ask(url, "warm-up", [], "", "", 5)
                break
            except OSError:
                time.sleep(0.5)
        rows.append((0, rss_mb(server.pid)))
        for n in range(1, args.requests + 1):
            try:
                remote.ask(url, question(n, rng), [], "", "", 5)
            except OSError:
                failures += 1
            if n % 1000 == 0 or n == args.requests:
                rows.append((n, rss_mb(server.pid)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("# Server memory over a bounded soak\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.1f}; reranker {args.rerank}\n"
    )
    print("| requests | RSS MB |\n|---:|---:|")
    for n, mb in rows:
        print(f"| {n} | {mb:.0f} |")
    at_1000 = next((mb for n, mb in rows if n == 1000), rows[0][1])
    print(
        f"\nGrowth from request 1,000 to {rows[-1][0]:,}: {100 * (rows[-1][1] / at_1000 - 1):+.1f} %; "
        f"{failures} requests failed; {time.monotonic() - start:.0f} s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
