"""Chat races in a real browser: questions asked close together, and New conversation mid-search.

Usage: python bench/chat.py [--rounds 20] [--burn 0]

Serves the app over the ~30 corpus summaries the browser tests use and drives Debian's chromium
through Playwright, in one page, round after round:
- "two": ask a question, and a second one as soon as the first shows as being searched; the
  round is right when both are answered, in the order asked, each once, and the box is empty;
- "clear": ask, press New conversation while it is searched, ask another; the round is right
  when only the second question is in the chat once its answer is in (and 1.5 s later).
`--burn N` keeps N processes spinning on the CPU meanwhile (a busy machine). Prints one
Markdown table: rounds right and wrong per kind, and the median seconds a round took.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_browser import CHOSEN, CHROMIUM_ARGS, CORPUS, POLL_MS, _serve  # noqa: E402

FIRST, SECOND = "Does pacing help?", "Is there a blood test for ME/CFS?"
ANSWERED = "n => document.querySelectorAll('#qa-chat .qa-turn:not(.qa-pending)').length >= n"


def _spin() -> None:
    while True:
        pass


def _questions(page) -> list[str]:
    return [q.split(":", 1)[1].strip() for q in page.locator("#qa-chat .qa-question").all_inner_texts()]


def _clear(page) -> None:
    if page.locator("#qa-chat .qa-turn").count():
        page.locator("#qa-new").click()
        page.wait_for_function("() => !document.querySelector('#qa-chat .qa-turn')", polling=POLL_MS)


def _two(page) -> bool:
    box = page.locator("#qa-question textarea")
    box.fill(FIRST)
    box.press("Enter")
    page.locator("#qa-chat .qa-pending").wait_for()
    box.fill(SECOND)
    box.press("Enter")
    page.wait_for_function(ANSWERED, arg=2, timeout=60_000, polling=POLL_MS)
    page.wait_for_timeout(500)  # a doubled or late turn would show by now
    return _questions(page) == [FIRST, SECOND] and box.input_value() == ""


def _cleared(page) -> bool:
    box = page.locator("#qa-question textarea")
    box.fill(FIRST)
    box.press("Enter")
    page.locator("#qa-chat .qa-pending:not(.qa-provisional)").wait_for()
    _clear(page)
    box.fill(SECOND)
    box.press("Enter")
    page.wait_for_function(ANSWERED, arg=1, timeout=60_000, polling=POLL_MS)
    page.wait_for_timeout(1500)  # time for the cleared question's answer to come back, were it shown
    return _questions(page) == [SECOND]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds of each kind")
    parser.add_argument("--burn", type=int, default=0, help="processes spinning on the CPU meanwhile")
    args = parser.parse_args()

    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from qa.serve.app import make_service

    work = Path(tempfile.mkdtemp(prefix="qa-chat-"))
    (work / "docs").mkdir()
    for path in sorted(CORPUS.glob("*.md")):
        if CHOSEN.search(path.read_text(encoding="utf-8")):
            shutil.copy(path, work / "docs")
    service = make_service(work / "docs", work / "index")
    service.ask("warm-up question")
    service.searcher.retriever("multilingual").wait(300)
    demo, url = _serve(service)
    burners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.burn)]
    for burner in burners:
        burner.start()
    results: dict[str, list[tuple[bool, float]]] = {"two": [], "clear": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(url)
            page.locator("#qa-question textarea").wait_for()
            for _ in range(args.rounds):
                for kind, run in (("two", _two), ("clear", _cleared)):
                    _clear(page)
                    start = time.perf_counter()
                    try:
                        right = run(page)
                    except PlaywrightTimeout:
                        right = False
                    results[kind].append((right, time.perf_counter() - start))
                    if not right:  # start the next round from a fresh page
                        page.reload()
                        page.locator("#qa-question textarea").wait_for()
            browser.close()
    finally:
        for burner in burners:
            burner.terminate()
        demo.close()
        shutil.rmtree(work, ignore_errors=True)

    print("# Chat races in the browser\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; {args.burn} CPU burners; "
        f"load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| kind | rounds | right | wrong | median s | min s | max s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, rows in results.items():
        times = [t for _, t in rows]
        right = sum(ok for ok, _ in rows)
        print(
            f"| {kind} | {len(rows)} | {right} | {len(rows) - right} | {statistics.median(times):.1f} "
            f"| {min(times):.1f} | {max(times):.1f} |"
        )
    return 0 if all(ok for rows in results.values() for ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
