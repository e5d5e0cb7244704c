"""The chat app in headless Chromium, as a reader meets it: answer first, copy, share, phone, accessible.

Runs Debian's chromium (/usr/bin/chromium; never a downloaded browser) and axe-core from npm
(tests/node_modules, installed by `make test`). Without them the tests are skipped, except under
CI=true, where they must run and so fail instead. Screenshots go to tests/artifacts/ (git-ignored).
With QA_SCREENSHOT_INDEX set to an index of the whole corpus, docs/screenshot.png is refreshed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "summaries"
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TIMEOUT_MS = 20_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Poll the page on a timer: Playwright's default (requestAnimationFrame) can stall in a headless
# page that paints nothing new, which once let an answer shown in 1 s time out after 60 s.
POLL_MS = 100
ZOOM_200 = {"width": 640, "height": 450}  # a 1280×900 window at 200 % zoom
# Enough real summaries to scroll: every one naming metformin or naltrexone, and the
# trial registrations and videos (so kinds of source differ).
CHOSEN = re.compile(r"metformin|naltrexone|clinicaltrials\.gov|youtu", re.I)
LDN = "Does low-dose naltrexone help?"

HOSTILE_NAME = "2025-06-01_Zorblatine_hostile_markup.md"
SCRIPT_TEXT = "<script>window.__pwned = 1</script>"
IMG_TEXT = '<img src=x onerror="window.__pwned2 = 1">'
HOSTILE = f"""---
title: "Zorblatine & the <b>unsafe</b> markup study"
tags:
- 🧪 Biomarker
created: '2025-06-01'
published: '2025-06-01'
---

<details>
<summary>Quux et al. (2025)</summary>

- **Authors:** Ada Quux, Bea O'Brien
- **Publisher:** Journal of Markup Safety
- **Link:** [DOI](https://doi.org/10.9999/zorb.2025.001)

</details>

## Summary

Zorblatine levels in blood were measured in people with ME/CFS. The zorblatine lab notes read \
{SCRIPT_TEXT} and the zorblatine figure was {IMG_TEXT} in the draft. Dr. Zed said zorblatine \
$VO_{{2}}$ fell, **very** clearly.

A second zorblatine paragraph points to [the zorblatine registry](https://example.org/injected).

## What has been found?

The marker was raised in 40 of 50 patients and in 3 of 50 controls.
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so the browser test must run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    """Debian's headless chromium driven by Playwright."""
    if not CHROMIUM.exists():
        _unavailable(f"no chromium at {CHROMIUM} (`make browser` installs Debian's)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _serve(service) -> tuple[object, str]:
    from qa.serve.app import LAUNCH_OPTIONS, build_app

    demo = build_app(service)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_OPTIONS
    )
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def service(chromium, tmp_path_factory):
    """A service over ~30 real summaries and a hostile one."""
    from qa.serve.app import make_service

    folder = tmp_path_factory.mktemp("browser") / "docs"
    folder.mkdir()
    for path in sorted(CORPUS.glob("*.md")):
        if CHOSEN.search(path.read_text(encoding="utf-8")):
            shutil.copy(path, folder)
    (folder / HOSTILE_NAME).write_text(HOSTILE, encoding="utf-8")
    assert len(list(folder.glob("*.md"))) >= 25
    service = make_service(folder, tmp_path_factory.mktemp("browser-index"))
    service.ask("warm-up question")  # load the reranker and language model before the first test
    # The server embeds the multilingual stage in the background; let it finish before the first
    # test, so no test's timing competes with it for the 2 cores.
    assert service.searcher.retriever("multilingual").wait(300)
    return service


@pytest.fixture(scope="module")
def url(service):
    """The app over that service, served in-process on a free port."""
    demo, address = _serve(service)
    yield address
    demo.close()


def _page(chromium, url: str, viewport: dict, scheme: str = "light", path: str = ""):
    context = chromium.new_context(viewport=viewport, color_scheme=scheme)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url.rstrip("/"))
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(url + path)
    page.locator("#qa-question textarea").wait_for()
    return page


@pytest.fixture(scope="module")
def desktop(chromium, url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = _page(chromium, url, DESKTOP)
    yield page
    page.context.close()


# Records, from the moment of asking, whether the question was echoed with "Searching…".
WATCH_ECHO = """() => {
    window.__echo = false;
    new MutationObserver(() => {
        const pending = document.querySelector('#qa-chat .qa-pending');
        if (pending && pending.innerText.includes('Searching')) window.__echo = pending.innerText;
    }).observe(document.querySelector('#qa-chat'), {childList: true, subtree: true});
}"""


def _ask(page, message: str, expect: str = ".qa-body > *"):
    """Type a message, press Enter, and return the new turn once its reply shows."""
    before = page.locator("#qa-chat .qa-turn:not(.qa-pending)").count()
    page.evaluate(WATCH_ECHO)
    box = page.locator("#qa-question textarea")
    box.fill(message)
    box.press("Enter")
    _wait_for_answer(page, before)
    turn = page.locator("#qa-chat .qa-turn").last
    turn.locator(expect).first.wait_for()
    page.wait_for_timeout(150)  # let the view settle on the new turn
    return turn


def _wait_for_answer(page, before: int, timeout: int = 60_000) -> None:
    """Until more than `before` turns are answered; on a timeout, a screenshot and what the page shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "n => document.querySelectorAll('#qa-chat .qa-turn:not(.qa-pending)').length > n",
            arg=before,
            timeout=timeout,  # a reranked answer on a busy 2-core machine can take seconds
            polling=POLL_MS,
        )
    except PlaywrightTimeout:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "timeout.png"))
        shown = page.evaluate("document.querySelector('#qa-chat').innerText.slice(-600)")
        boxed = page.locator("#qa-question textarea").input_value()
        pytest.fail(
            f"no answer within {timeout} ms; box: {boxed!r}; chat ends: {shown!r}; errors: {page.errors}"
        )


def _in_view(page, locator) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 40) <= height


def _new_conversation(page) -> None:
    if not page.locator("#qa-chat .qa-turn").count():
        # Nothing to clear: a click would return at once here while its event is still on its
        # way, and its empty chat could then land after the next question's echo.
        return
    page.locator("#qa-new").click()
    page.wait_for_function("() => !document.querySelector('#qa-chat .qa-turn')", polling=POLL_MS)


def _labels(turn) -> list[str]:
    return [t.strip() for t in turn.locator(".qa-study .qa-label").all_inner_texts()]


def test_answer_starts_at_the_question_and_a_quoted_digest(desktop):
    _new_conversation(desktop)
    turn = _ask(desktop, LDN, ".qa-study")
    assert desktop.evaluate("window.__echo") and LDN in desktop.evaluate("window.__echo")
    question, digest = turn.locator(".qa-question"), turn.locator(".qa-digest")
    assert _in_view(desktop, question) and _in_view(desktop, digest)
    assert desktop.evaluate("window.scrollY") > 0, "the page should have moved to the answer"
    # The digest quotes sentences of the shown passages, each ending with a link to its study.
    items = digest.locator("li")
    assert 1 <= items.count() <= 6
    passages = " ".join(turn.locator(".qa-study").all_inner_texts())
    for n in range(items.count()):
        quote = items.nth(n).locator("q").inner_text().strip()
        ref = items.nth(n).locator("a.qa-ref")
        assert quote[:40] in passages, quote
        target = ref.get_attribute("href")
        assert turn.locator(target).count() == 1
    # Study cards: a heading each, a link named for what it leads to, few marked sentences.
    studies = turn.locator(".qa-study")
    assert studies.count() == 5
    assert turn.locator(".qa-study h3").count() == 5
    kinds = {
        "Paper (DOI)",
        "Preprint (DOI)",
        "Video",
        "Trial registration",
        "News",
        "Paper (PubMed)",
        "Web page",
    }
    for n in range(5):
        link = studies.nth(n).locator(".qa-meta a")
        assert link.count() == 1 and link.inner_text().strip() in kinds
        assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
        assert studies.nth(n).locator(".qa-passage").first.locator("mark").count() <= 2
    # The whole summary unfolds in place.
    more = studies.first.locator("details.qa-more")
    more.locator("summary").click()
    assert more.locator(".qa-full h5").count() >= 3
    # Desktop lines stay readable: 45-80 characters.
    per_line = turn.locator(".qa-study .qa-passage").first.evaluate(
        """el => { const h = parseFloat(getComputedStyle(el).lineHeight);
                   return el.innerText.length / Math.max(1, Math.round(el.clientHeight / h)); }"""
    )
    assert 45 <= per_line <= 80, per_line
    assert "q=Does+low-dose+naltrexone" in desktop.url
    desktop.screenshot(path=str(ARTIFACTS / "answer.png"))


def test_copy_gives_clean_text_with_numbered_links(desktop):
    turn = desktop.locator("#qa-chat .qa-turn").last
    if not turn.count() or not turn.locator(".qa-study").count():
        turn = _ask(desktop, LDN, ".qa-study")
    turn.locator("button.qa-copy").click()
    turn.locator(".qa-done", has_text="copied").wait_for()
    text = desktop.evaluate("navigator.clipboard.readText()")
    assert "<div" not in text and "<" not in text.replace("<0.", ""), text[:300]
    assert text.startswith(f"**Question:** {LDN}")
    assert re.search(r"^\[1\] .+ https?://", text, re.M) and "[5]" in text
    assert "not medical advice" in text
    turn.locator("button.qa-share").click()
    link = desktop.evaluate("navigator.clipboard.readText()")
    assert link.startswith("http://127.0.0.1:") and "?q=Does+low-dose+naltrexone+help%3F" in link


def test_a_link_with_the_question_answers_it_on_load(chromium, url):
    page = _page(chromium, url, DESKTOP, path="?q=naltrexone+treatment&tag=Treatment&from=2020")
    try:
        turn = page.locator("#qa-chat .qa-turn").last
        turn.locator(".qa-study").first.wait_for()
        assert "naltrexone treatment" in turn.locator(".qa-question").inner_text()
        for n in range(turn.locator(".qa-study").count()):
            assert "Treatment" in turn.locator(".qa-study").nth(n).locator(".qa-tag").all_inner_texts()
        assert "Filters: tagged Treatment; published 2020 or later" in turn.inner_text()
        page.get_by_text("Filters", exact=True).click()
        assert page.locator("#qa-tags").get_by_label("Treatment", exact=True).is_checked()
        # Filters that nothing passes say so, not "no summary seems to answer".
        page.goto(url + "?q=fatigue&tag=News&from=2015&to=2015")
        turn = page.locator("#qa-chat .qa-turn").last
        turn.locator(".qa-notcovered").wait_for()
        assert "No study matches these filters" in turn.inner_text()
        assert "published in 2015" in turn.inner_text()
    finally:
        page.context.close()


@pytest.mark.parametrize("viewport", [PHONE, ZOOM_200], ids=["phone", "zoom200"])
def test_phone_and_zoom_show_the_question_box_and_land_on_the_answer(chromium, url, viewport):
    page = _page(chromium, url, viewport)
    try:
        box = page.locator("#qa-question textarea")
        assert _in_view(page, box), box.bounding_box()
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
        turn = _ask(page, LDN, ".qa-study")
        assert _in_view(page, turn.locator(".qa-question")) and _in_view(page, turn.locator(".qa-digest"))
        assert turn.bounding_box()["width"] >= viewport["width"] * 0.8
        assert _in_view(page, box), "the question box should be on screen after an answer"
        page.screenshot(path=str(ARTIFACTS / f"answer-{viewport['width']}.png"))
        if viewport is PHONE:  # the cards after the first show only their headings, until opened
            cards = turn.locator(".qa-study")
            assert cards.first.locator(".qa-passage").first.is_visible()
            second = cards.nth(1)
            assert (
                second.locator(".qa-cite").is_visible()
                and not second.locator(".qa-passage").first.is_visible()
            )
            opener = second.locator("button.qa-unfold")
            assert opener.get_attribute("aria-expanded") == "false"
            opener.click()
            assert second.locator(".qa-passage").first.is_visible()
            assert opener.get_attribute("aria-expanded") == "true"
        # A second answer: the box is still in view, not below the cards.
        _ask(page, "Is it safe to take metformin?", ".qa-study")
        assert _in_view(page, box)
    finally:
        page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_or_critical_problem(chromium, url, scheme):
    if not AXE.exists():
        _unavailable(f"no axe-core at {AXE} (`make test` installs it with npm)")
    page = _page(chromium, url, DESKTOP, scheme, path=f"?__theme={scheme}")
    try:
        turn = _ask(page, LDN, ".qa-study")
        turn.locator("details.qa-more summary").first.click()
        _ask(page, "Is ketamine useful for long covid?", ".qa-notcovered")
        for panel in ("Filters", "Read a cited study in full", "Cite these studies", "About these summaries"):
            page.get_by_text(panel, exact=True).click()
        page.locator("#qa-cite-text").click()
        page.locator("#qa-cite-box textarea").wait_for()
        page.locator("#qa-cite-bib").click()
        page.locator("#qa-cite-file a, #qa-cite-file .file-name, #qa-cite-file td").first.wait_for()
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:120] for n in v["nodes"][:3]]}
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        page.screenshot(path=str(ARTIFACTS / f"theme-{scheme}.png"))
        assert bad == [], json.dumps(bad, indent=1)
        # The answer area's accessible name is words, not markup.
        name = page.locator("#qa-chat .qa-chat").get_attribute("aria-label")
        assert name == "Questions and answers"
    finally:
        page.context.close()


def test_new_topic_follow_up_and_opening_a_study(desktop):
    _new_conversation(desktop)
    first = _ask(desktop, LDN, ".qa-study")
    labels = _labels(first)
    metformin = _ask(desktop, "Is it safe to take metformin?", ".qa-study")
    assert "follow-up" not in metformin.inner_text()
    assert "metformin" in metformin.locator(".qa-study").first.inner_text().lower()
    labels = _labels(metformin)
    third = _ask(desktop, "more on 3", ".qa-source")
    assert third.locator(".qa-source h3").inner_text().startswith(labels[2])
    second = _ask(desktop, "show me the second one", ".qa-source")
    assert second.locator(".qa-source h3").inner_text().startswith(labels[1])
    follow = _ask(desktop, "and in long covid?", ".qa-study")
    assert "Read as a follow-up" in follow.locator(".qa-note").inner_text()
    # "New conversation" clears the memory too: the same follow-up now stands alone.
    _new_conversation(desktop)
    alone = _ask(desktop, "and in long covid?")
    assert not alone.locator(".qa-note").count()


def test_summary_markup_is_shown_as_text_and_never_runs(desktop):
    _new_conversation(desktop)
    turn = _ask(desktop, "What do zorblatine levels in blood show?", ".qa-study")
    first = turn.locator(".qa-study").first
    assert first.locator(".qa-label").inner_text() == "Quux et al. (2025)"
    text = first.inner_text()
    assert SCRIPT_TEXT in text and IMG_TEXT in text
    assert "<b>unsafe</b>" in first.locator(".qa-cite").inner_text()
    assert first.locator(".qa-passage").first.locator("sub").inner_text() == "2"  # $VO_{2}$
    assert "$VO" not in text and "**" not in text
    assert "Dr. Zed said" in text
    assert first.locator(".qa-passage a").count() == 0, "summary text became a link"
    assert desktop.locator('#qa-chat img[src="x"], #qa-chat script, #qa-chat b').count() == 0
    full = _ask(desktop, "open study 1", ".qa-source")
    assert SCRIPT_TEXT in full.inner_text()
    # The "Cited study" picker names the studies with their titles, as text too (issue 20, 10).
    opener = desktop.locator("#qa-source-box").get_by_text("Read a cited study in full")
    opener.click()
    desktop.locator("#qa-source-pick input").click()
    options = desktop.locator("#" + desktop.locator("#qa-source-pick input").get_attribute("aria-controls"))
    choice = options.locator("li", has_text="Zorblatine").first
    assert "Zorblatine & the <b>unsafe</b> markup study" in choice.inner_text()
    assert options.locator("b, img, script").count() == 0
    choice.click()
    desktop.locator("#qa-source", has_text="zorblatine lab notes").wait_for()
    assert SCRIPT_TEXT in desktop.locator("#qa-source").inner_text()
    assert desktop.locator('#qa-source img[src="x"], #qa-source script, #qa-source b').count() == 0
    opener.click()  # closed again for the tests after
    assert desktop.evaluate("[typeof window.__pwned, typeof window.__pwned2]") == ["undefined", "undefined"]


def test_readme_screenshot_on_the_whole_corpus(chromium, tmp_path):
    """Refreshes docs/screenshot.png from an index of the whole corpus (QA_SCREENSHOT_INDEX)."""
    prebuilt = os.environ.get("QA_SCREENSHOT_INDEX", "")
    if not prebuilt:
        pytest.skip("QA_SCREENSHOT_INDEX is not set")
    from qa.serve.app import make_service

    shutil.copytree(prebuilt, tmp_path / "index")
    demo, address = _serve(make_service(CORPUS, tmp_path / "index"))
    page = _page(chromium, address, DESKTOP)
    try:
        turn = _ask(page, "Has any antiviral helped ME/CFS patients?", ".qa-study")
        assert _in_view(page, turn.locator(".qa-digest"))
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))
    finally:
        page.context.close()
        demo.close()


def test_a_citation_moves_within_the_page_and_keeps_the_conversation(desktop):
    _new_conversation(desktop)
    _ask(desktop, "Is it safe to take metformin?", ".qa-study")
    turn = _ask(desktop, LDN, ".qa-digest")
    desktop.evaluate("window.__samePage = true")
    turns = desktop.locator("#qa-chat .qa-turn").count()
    refs = turn.locator(".qa-digest a.qa-ref")
    target = refs.first.get_attribute("href")
    refs.first.click()
    desktop.wait_for_function("h => location.hash === h", arg=target, polling=POLL_MS)
    assert desktop.evaluate("window.__samePage") is True, "the citation reloaded the page"
    assert "q=Does+low-dose+naltrexone" in desktop.url
    assert desktop.locator("#qa-chat .qa-turn").count() == turns
    study = desktop.locator(target)
    assert _in_view(desktop, study.locator(".qa-cite"))
    assert desktop.evaluate("document.activeElement.id") == target[1:] + "-h"
    # Back returns to the citation, still on the same page with the same conversation.
    desktop.go_back()
    desktop.wait_for_function("() => location.hash === ''", polling=POLL_MS)
    assert desktop.evaluate("window.__samePage") is True
    assert desktop.evaluate("document.activeElement.classList.contains('qa-ref')")
    assert "q=Does+low-dose+naltrexone" in desktop.url
    # Enter on a citation does the same as a click.
    last = refs.last
    last_target = last.get_attribute("href")
    last.focus()
    desktop.keyboard.press("Enter")
    desktop.wait_for_function("h => location.hash === h", arg=last_target, polling=POLL_MS)
    assert desktop.evaluate("window.__samePage") is True
    assert desktop.locator("#qa-chat .qa-turn").count() == turns
    assert _in_view(desktop, desktop.locator(last_target).locator(".qa-cite"))


# A carer's pasted story with the question at its end: ~290 word pieces, past what the reranker
# reads, and 1,000 characters, the box's limit.
STORY = (
    "My partner (41) got ill after a virus in 2021; since then: fatigue, dizziness, poor sleep, "
    "brain fog, pain... " * 6
)[:880] + " Has anything, e.g. low-dose naltrexone (LDN), helped with fatigue?"


def test_a_long_question_is_answered_within_30_seconds_and_says_what_was_read(desktop):
    _new_conversation(desktop)
    question = (STORY + " " + "!" * 1000)[:1000]
    assert len(question) == 1000
    assert "1,000 characters" in desktop.locator("#qa-question").inner_text()
    before = desktop.locator("#qa-chat .qa-turn:not(.qa-pending)").count()
    box = desktop.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")
    desktop.wait_for_function(
        "n => document.querySelectorAll('#qa-chat .qa-turn:not(.qa-pending)').length > n",
        arg=before,
        timeout=30_000,
        polling=POLL_MS,
    )
    turn = desktop.locator("#qa-chat .qa-turn").last
    assert "only this part of it was searched" in turn.locator(".qa-note").inner_text()
    assert "naltrexone" in turn.locator(".qa-study").first.inner_text().lower()


def test_a_20000_character_link_is_answered_within_30_seconds(chromium, url):
    from urllib.parse import quote_plus

    page = _page(chromium, url, DESKTOP, path="?q=" + quote_plus((STORY + " ") * 23)[:20_000])
    try:
        turn = page.locator("#qa-chat .qa-turn:not(.qa-pending)").first
        turn.locator(".qa-study").first.wait_for(timeout=30_000)
        assert "only this part of it was searched" in turn.locator(".qa-note").inner_text()
    finally:
        page.context.close()


def test_two_questions_asked_close_together_are_both_answered_in_order(desktop):
    _new_conversation(desktop)
    box = desktop.locator("#qa-question textarea")
    box.fill("Does pacing help?")
    box.press("Enter")
    # The second while the first is still being searched (a reader asked it 0.7 s later, when
    # the first took seconds; here the first is answered sooner, so ask at once: the box opens
    # again as soon as the server has taken the first).
    desktop.locator("#qa-chat .qa-pending").wait_for()
    box.fill("Is there a blood test for ME/CFS?")
    box.press("Enter")
    _wait_for_answer(desktop, 1)
    questions = desktop.locator("#qa-chat .qa-turn .qa-question").all_inner_texts()
    assert [q.split(":", 1)[1].strip() for q in questions] == [
        "Does pacing help?",
        "Is there a blood test for ME/CFS?",
    ]
    assert desktop.locator("#qa-chat .qa-turn").last.locator(".qa-study").count() >= 1
    assert box.input_value() == ""


def test_new_conversation_while_a_question_is_searched_stays_new(desktop):
    """The cleared question's answer, still on its way, must not bring the old conversation back."""
    _new_conversation(desktop)
    box = desktop.locator("#qa-question textarea")
    box.fill("Does pacing help?")
    box.press("Enter")
    desktop.locator("#qa-chat .qa-pending:not(.qa-provisional)").wait_for()  # the server has it
    desktop.locator("#qa-new").click()
    desktop.wait_for_function("() => !document.querySelector('#qa-chat .qa-turn')", polling=POLL_MS)
    _ask(desktop, LDN, ".qa-study")
    desktop.wait_for_timeout(1500)  # time for the cleared question's answer to land, were it shown
    questions = desktop.locator("#qa-chat .qa-turn .qa-question").all_inner_texts()
    assert [q.split(":", 1)[1].strip() for q in questions] == [LDN]


def test_study_titles_and_headings_are_drawn_in_one_font(desktop):
    """Chromium's own account of the fonts used for each text (CSS.getPlatformFontsForNode)."""
    turn = desktop.locator("#qa-chat .qa-turn").last
    if not turn.count() or not turn.locator(".qa-study").count():
        _ask(desktop, LDN, ".qa-study")
    cdp = desktop.context.new_cdp_session(desktop)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    for selector in ("#qa-intro h1", "#qa-chat .qa-turn:last-child .qa-study .qa-title", "#qa-ask"):
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, selector
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        families = {f["familyName"] for f in fonts}
        assert len(families) == 1, (selector, fonts)
    cdp.detach()
