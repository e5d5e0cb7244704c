"""Benchmark: `/ask` end to end under 1 and 32 concurrent clients, and cold start of the `qa` command.

Usage: python bench/throughput.py [--index-from DIR] [--docs DIR] [--rerank none,cross-encoder]
                                  [--clients 1,32] [--seconds 20] [--concurrency 4] [--cold-runs 5]

Copies a built index of the 317-summary corpus (default /work/idx-corpus, else `qa index` builds
one) to a temporary folder, adds its sentence vectors when it has none (`qa index`, timed), and
for each reranker setting launches `qa serve --no-update` on it, times how long it takes to
answer, then drives `/ask` over plain HTTP (Gradio's API, the same calls `qa ask` makes) with
the 60 dev questions, from 1 and from 32 client threads, each for a fixed time. Prints the
machine and its load (the clients share its cores), p50/p95 latency, requests/s and the share
of answers the reranker ordered (a busy server skips it: `qa serve --rerank-busy`). Then times
`qa --help`, `qa ask` answered by the running server, and `qa ask --local` (no server, no torch)
from cold processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.serve import remote  # noqa: E402  (standard library only: the client adds little load)

SHARED = ROOT.parent / "shared"
QA = str(Path(sys.executable).with_name("qa"))


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (q a multiple of 5) by linear interpolation, as numpy's default."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=20, method="inclusive")[q // 5 - 1]


def machine() -> str:
    """Cores, CPU, Python, load average and time, for the report."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"load average {load} (1, 5, 15 min) at start; {time.strftime('%Y-%m-%d %H:%M')}"
    )


def prepare_index(source: Path, docs: Path, into: Path) -> str:
    """Copy the index (or build one) into `into` and make sure it has sentence vectors."""
    if (source / "manifest.json").exists():
        shutil.copytree(source, into)
        what = f"copied from {source}"
    else:
        what = "built"
    has_sentences = into.exists() and any(into.glob("sentences-*.ids.npy"))
    if not has_sentences:
        start = time.perf_counter()
        subprocess.run(
            [QA, "index", "--docs", str(docs), "--index", str(into), "--quiet", "--switch-docs"],
            cwd=ROOT,
            check=True,
        )
        what += f"; `qa index` added sentence vectors in {time.perf_counter() - start:.0f} s"
    return what


def start_server(index: Path, port: int, rerank: str, concurrency: int) -> tuple[subprocess.Popen, float]:
    """Launch `qa serve` and return it with the seconds until it answered a first question."""
    start = time.perf_counter()
    server = subprocess.Popen(
        [QA, "serve", "--index", str(index), "--port", str(port), "--no-update", "--rerank", rerank]
        + ["--concurrency", str(concurrency)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    while True:
        if server.poll() is not None:
            raise SystemExit(f"qa serve exited with {server.returncode}")
        try:
            remote.ask(url, "Does exercise make symptoms worse?", [], "", "", 5, connect_timeout=5)
            return server, time.perf_counter() - start
        except OSError:
            time.sleep(0.1)


def drive(url: str, questions: list[str], clients: int, seconds: float) -> dict:
    """`clients` threads asking in turn for `seconds`; latencies, failures and requests/s."""
    latencies: list[float] = []
    failures: list[str] = []
    reranked: list[bool] = []
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        i = n * 7
        while time.monotonic() < stop:
            question = questions[i % len(questions)]
            i += 1
            begin = time.perf_counter()
            try:
                data = remote.ask(url, question, [], "", "", 5)
                assert isinstance(data.get("studies"), list)
                latencies.append(time.perf_counter() - begin)
                reranked.append(bool(data.get("reranked")))
            except Exception as exc:  # counted and shown, never hidden
                failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - begin
    return {
        "clients": clients,
        "requests": len(latencies),
        "failed": len(failures),
        "first_failure": failures[0] if failures else "",
        "p50": percentile(latencies, 50) * 1000,
        "p95": percentile(latencies, 95) * 1000,
        "rps": len(latencies) / took,
        "reranked": sum(reranked) / len(reranked) if reranked else 0.0,
        "seconds": took,
    }


def timed(command: list[str], runs: int) -> tuple[float, float, float]:
    """Median, min and max seconds of a command over `runs` cold processes."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    """Run the benchmark and print a Markdown report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index-from", type=Path, default=Path("/work/idx-corpus"))
    parser.add_argument("--docs", type=Path, default=SHARED / "corpus" / "summaries")
    parser.add_argument("--questions", type=Path, default=SHARED / "eval" / "questions-dev.jsonl")
    parser.add_argument("--rerank", default="none,cross-encoder")
    parser.add_argument("--clients", default="1,32")
    parser.add_argument("--seconds", type=float, default=20.0, help="per load level")
    parser.add_argument("--concurrency", type=int, default=4, help="qa serve --concurrency")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=7960)
    args = parser.parse_args()

    questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line]
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="qa-throughput-"))
    index = work / "index"
    print(f"\nIndex: {prepare_index(args.index_from, args.docs, index)}")
    manifest = json.loads((index / "manifest.json").read_text())
    passages = sum(len(d["chunks"]) for d in manifest["documents"].values())
    print(
        f"{len(manifest['documents'])} summaries, {passages} passages; {len(questions)} questions in turn\n"
    )

    print("### /ask end to end (HTTP, k=5, highlights included)\n")
    print(
        "| reranker | clients | requests | failed | p50 ms | p95 ms | requests/s | reranked | serve ready s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    server = None
    question = "Has any antiviral helped ME/CFS patients?"
    cold = [("qa --help", [QA, "--help"])]
    try:
        for rerank in args.rerank.split(","):
            server, ready = start_server(index, args.port, rerank, args.concurrency)
            url = f"http://127.0.0.1:{args.port}/"
            drive(url, questions, 2, 3)  # warm: first questions of each thread
            for clients in (int(c) for c in args.clients.split(",")):
                r = drive(url, questions, clients, args.seconds)
                print(
                    f"| {rerank} | {clients} | {r['requests']} | {r['failed']} | {r['p50']:.0f} | "
                    f"{r['p95']:.0f} | {r['rps']:.1f} | {r['reranked']:.0%} | {ready:.1f} |",
                    flush=True,
                )
                if r["failed"]:
                    print(f"\n(first failure: {r['first_failure']})\n")
            ask = [QA, "ask", question, "--index", str(index)]
            cold.append((f"qa ask (a `qa serve --rerank {rerank}` running)", ask, timed(ask, args.cold_runs)))
            server.terminate()
            server.wait(timeout=30)
            server = None

        print(f"\n### Cold start ({args.cold_runs} runs each: median, min-max seconds)\n")
        print("| command | median s | min s | max s |")
        print("|---|---:|---:|---:|")
        local = [QA, "ask", question, "--index", str(index)]  # no server runs now
        cold += [
            ("qa ask, no server (numpy query model, reranked)", local),
            ("qa ask, no server, full sentence-transformers (QA_LIGHT=0)", ["env", "QA_LIGHT=0", *local]),
        ]
        for label, command, *measured in cold:
            median, low, high = measured[0] if measured else timed(command, args.cold_runs)
            print(f"| {label} | {median:.2f} | {low:.2f} | {high:.2f} |", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nLoad average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
