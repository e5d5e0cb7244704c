"""The chat app in headless Chromium: ask, filter by tag, read a study in full, and stay safe.

Runs Debian's chromium (/usr/bin/chromium; never a downloaded browser). Without it the tests
are skipped, except under CI=true, where they must run and so fail instead.
Screenshots go to tests/artifacts/ (git-ignored); answer.png is the one worth looking at.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from qa.chunking import sections
from qa.documents import Document, load_document

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "summaries"
SEEDS = ROOT / "seeds"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 20_000

# Real summaries: the seed (antivirals, Treatment), a Long COVID treatment review (Treatment),
# a Long COVID treatment trial without a DOI (Treatment), and a Biomarker-only study.
REAL = [
    "2025-02-10_Targeting_the_SARS*",
    "2022-11-11_Prednisolone_and_Vitamin_B1*",
    "2019-07-04_Post-Exertional_Malaise_Is_Associated*",
]
ANTIVIRAL = "Has any antiviral helped ME/CFS patients?"

# A valid summary whose text carries markup that must be shown, never run.
HOSTILE_NAME = "2025-06-01_Zorblatine_hostile_markup.md"
HOSTILE_LABEL = "Quux & O'Brien et al. (2025)"
SCRIPT_TEXT = "<script>window.__pwned = 1</script>"
IMG_TEXT = '<img src=x onerror="window.__pwned2 = 1">'
MD_LINK_TEXT = "[the zorblatine registry](https://example.org/injected)"
HOSTILE = f"""---
title: "Zorblatine & the <b>unsafe</b> markup study"
tags:
- 🧪 Biomarker
created: '2025-06-01'
published: '2025-06-01'
---

<details>
<summary>{HOSTILE_LABEL}</summary>

- **Authors:** Ada Quux, Bea O'Brien, Cy Zed
- **Institutes:** Institute of <i>Markup</i> Safety
- **Publisher:** Journal of Markup Safety
- **Link:** [DOI](https://doi.org/10.9999/zorb.2025.001)

</details>

## Summary

Zorblatine levels in blood were measured in people with ME/CFS. The zorblatine lab notes read \
{SCRIPT_TEXT} and the zorblatine figure was {IMG_TEXT} in the draft. Zorblatine was higher in \
patients than in healthy controls.

A second zorblatine paragraph points to {MD_LINK_TEXT} and calls zorblatine **very promising**.

## What was researched?

Whether a blood marker separates patients from healthy people.

## What has been found?

The marker was raised in 40 of 50 patients and in 3 of 50 controls.
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so the browser test must run", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> dict[str, Document]:
    """A folder of four real summaries and the hostile one, by citation label."""
    folder = tmp_path_factory.mktemp("browser") / "docs"
    folder.mkdir()
    shutil.copy(next(SEEDS.glob("*.md")), folder)
    for pattern in REAL:
        found = sorted(CORPUS.glob(pattern))
        assert len(found) == 1, pattern
        shutil.copy(found[0], folder)
    (folder / HOSTILE_NAME).write_text(HOSTILE, encoding="utf-8")
    loaded = [load_document(p) for p in sorted(folder.glob("*.md"))]
    by_label = {d.label: d for d in loaded}
    assert len(by_label) == 5 and HOSTILE_LABEL in by_label
    return by_label


@pytest.fixture(scope="module")
def url(chromium, docs, tmp_path_factory):
    """The app over `docs`, served in-process on a free loopback port."""
    from qa.app import CSS, build_app, make_service

    folder = next(iter(docs.values())).path.parent
    service = make_service(folder, tmp_path_factory.mktemp("browser-index"))
    demo = build_app(service)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(chromium, url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(url)
    page.locator("#qa-question textarea").wait_for()
    yield page
    context.close()


def _bots(page):
    return page.locator('#qa-chat [data-testid="bot"]')


def _send(page, message: str, expect: str = ".qa-study"):
    """Type a message, press Enter, and return the new bot message once `expect` shows in it."""
    before = _bots(page).count()
    box = page.locator("#qa-question textarea")
    box.fill(message)
    box.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#qa-chat [data-testid=\"bot\"]').length > n", arg=before
    )
    reply = _bots(page).last
    reply.locator(expect).first.wait_for()
    return reply


def _new_conversation(page) -> None:
    page.locator("#qa-new").click()
    page.wait_for_function("() => !document.querySelector('#qa-chat [data-testid=\"bot\"]')")


def _pwned(page) -> list:
    return page.evaluate("[typeof window.__pwned, typeof window.__pwned2, typeof window.__pwned3]")


def _study_labels(reply) -> list[str]:
    return [t.strip() for t in reply.locator(".qa-study .qa-cite strong").all_inner_texts()]


# The WCAG contrast ratio of an element's text against the first opaque background behind it.
CONTRAST = """(el) => {
    const rgb = c => c.match(/[\\d.]+/g).map(Number);
    const lum = c => {
        const f = v => ((v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
        const [r, g, b] = rgb(c);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let e = el, back = "rgb(255, 255, 255)";
    while (e) {
        const c = getComputedStyle(e).backgroundColor;
        if (c && c !== "transparent" && !(rgb(c).length === 4 && rgb(c)[3] === 0)) { back = c; break; }
        e = e.parentElement;
    }
    const [hi, lo] = [lum(getComputedStyle(el).color), lum(back)].sort((a, b) => b - a);
    return (hi + 0.05) / (lo + 0.05);
}"""
READABLE = [".qa-cite", ".qa-meta", ".qa-meta a", ".qa-tag", ".qa-section", ".qa-passage", ".qa-passage mark"]
READABLE += [".qa-notcovered", ".qa-disclaimer"]


def _headings(doc: Document) -> list[str]:
    return [s.heading for s in sections(doc)]


def _scroll_chat_to(page, element) -> None:
    """Scroll the chat so `element` sits near its top, clear of the chat's toolbar."""
    script = """async (el) => {
        let box = el.parentElement;
        while (box && !(box.scrollHeight > box.clientHeight + 1
                        && /(auto|scroll)/.test(getComputedStyle(box).overflowY))) {
            box = box.parentElement;
        }
        const frame = () => new Promise(r => requestAnimationFrame(() => r()));
        for (let i = 0; i < 10; i++) {
            if (box) box.scrollTop += el.getBoundingClientRect().top - box.getBoundingClientRect().top - 44;
            window.scrollTo(0, 0);
            await frame(); await frame();
            if (!box) return 0;
            const off = el.getBoundingClientRect().top - box.getBoundingClientRect().top;
            const stuck = box.scrollTop <= 0 || box.scrollTop + box.clientHeight >= box.scrollHeight - 1;
            if (Math.abs(off - 44) < 3 || (stuck && i > 2)) return off;
        }
        return null;
    }"""
    assert element.evaluate(script) is not None, "the chat kept scrolling away from the answer"


def _open_source_box(page) -> None:
    pick = page.locator("#qa-source-pick input")
    if not pick.is_visible():
        page.get_by_text("Read a cited study in full").click()
    pick.wait_for(state="visible")


def _pick_source(page, number: int) -> None:
    """Choose the nth cited study in the "Read a cited study in full" dropdown."""
    _open_source_box(page)
    page.locator("#qa-source-pick input").click()
    page.get_by_role("option", name=re.compile(rf"^{number}\. ")).click()
    page.get_by_role("listbox").wait_for(state="hidden")


def test_answer_cites_studies_with_doi_links_and_highlights(page, docs):
    _new_conversation(page)
    reply = _send(page, ANTIVIRAL)
    studies = reply.locator(".qa-study")
    assert studies.count() == 5
    labels = _study_labels(reply)
    assert set(labels) <= set(docs), labels
    assert labels[0] == "Seton et al. (2024)"
    for n, label in enumerate(labels):
        study, doc = studies.nth(n), docs[label]
        assert study.locator(".qa-num").inner_text().strip() == f"{n + 1}."
        assert doc.title.split(":")[0] in study.locator(".qa-cite").inner_text()
        link = study.locator("a", has_text="Read the paper")
        assert link.count() == 1, label
        if doc.doi:
            assert link.get_attribute("href") == f"https://doi.org/{doc.doi}"
        else:
            assert link.get_attribute("href") == doc.link and doc.link.startswith("https://")
        assert link.get_attribute("target") == "_blank"
        assert "noopener" in (link.get_attribute("rel") or "")
        assert study.locator(".qa-passage").count() >= 1
    doi_links = reply.locator('a[href^="https://doi.org/"]')
    assert doi_links.count() == sum(1 for label in labels if docs[label].doi) >= 3
    assert all(doi_links.nth(i).get_attribute("target") == "_blank" for i in range(doi_links.count()))
    # The sentence that answers best is marked, and it is a sentence of the passage.
    first = studies.first
    marks = first.locator(".qa-passage mark")
    assert marks.count() >= 1
    assert "antiviral" in " ".join(marks.all_inner_texts()).lower()
    passage_text = " ".join(first.locator(".qa-passage").all_inner_texts())
    assert all(m.strip() in passage_text for m in marks.all_inner_texts())
    assert "not medical advice" in reply.inner_text()

    page.evaluate("document.fonts.ready")
    _scroll_chat_to(page, page.locator('#qa-chat [data-testid="user"]').last)
    page.screenshot(path=str(ARTIFACTS / "answer.png"))


def test_tag_filter_shows_only_tagged_studies(page, docs):
    _new_conversation(page)
    treatment = page.locator("#qa-tags").get_by_label("Treatment", exact=True)
    treatment.check()
    try:
        assert treatment.is_checked()
        reply = _send(page, "Which treatments reduce fatigue?")
        labels = _study_labels(reply)
        expected = {label for label, d in docs.items() if "Treatment" in d.tags}
        assert labels and set(labels) <= expected, labels
        studies = reply.locator(".qa-study")
        for n in range(studies.count()):
            tags = [t.strip() for t in studies.nth(n).locator(".qa-tag").all_inner_texts()]
            assert "Treatment" in tags, (labels[n], tags)
        assert "Filters: tags: Treatment" in reply.inner_text()
        page.screenshot(path=str(ARTIFACTS / "filtered.png"))
    finally:
        treatment.uncheck()
    reply = _send(page, "Which blood markers differ after exertion?")
    assert "McGregor et al. (2019)" in _study_labels(reply)


def test_source_view_from_the_dropdown_and_from_the_chat(page, docs):
    _new_conversation(page)
    reply = _send(page, ANTIVIRAL)
    labels = _study_labels(reply)

    _pick_source(page, 1)
    source = page.locator("#qa-source .qa-source")
    source.wait_for()
    doc = docs[labels[0]]
    assert source.locator("h3").inner_text().startswith(f"{doc.label} — {doc.title[:30]}")
    assert [h.strip() for h in source.locator("h4").all_inner_texts()] == _headings(doc)
    assert source.locator(f'a[href="https://doi.org/{doc.doi}"]').count() == 1
    assert "Seton" in source.inner_text() and "Journal of Clinical Medicine" in source.inner_text()
    source.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(ARTIFACTS / "source-dropdown.png"))

    reply = _send(page, "tell me more about 2", expect=".qa-source")
    doc = docs[labels[1]]
    full = reply.locator(".qa-source")
    assert full.locator("h3").inner_text().startswith(doc.label)
    assert [h.strip() for h in full.locator("h4").all_inner_texts()] == _headings(doc)
    last_section = sections(doc)[-1].text.split(". ")[0]
    assert last_section[:60] in full.inner_text()

    reply = _send(page, "tell me more about 9", expect="p")
    assert "There is no study 9" in reply.inner_text()


def test_summary_markup_is_shown_as_text_and_never_runs(page, docs):
    _new_conversation(page)
    reply = _send(page, "What do zorblatine levels in blood show?")
    assert _study_labels(reply)[0] == HOSTILE_LABEL
    first = reply.locator(".qa-study").first
    text = first.inner_text()
    assert SCRIPT_TEXT in text and IMG_TEXT in text
    assert "<b>unsafe</b>" in first.locator(".qa-cite").inner_text()
    assert first.locator(".qa-cite b").count() == 0
    assert page.locator('#qa-chat img[src="x"]').count() == 0
    assert page.locator("#qa-chat script").count() == 0
    assert page.locator('#qa-chat a[href^="javascript"]').count() == 0
    assert "<script>window.__pwned" in page.locator("body").inner_text()

    # The whole summary, in the chat and in the source panel.
    reply = _send(page, "tell me more about 1", expect=".qa-source")
    full = reply.locator(".qa-source")
    assert SCRIPT_TEXT in full.inner_text() and IMG_TEXT in full.inner_text()
    assert "Institute of <i>Markup</i> Safety" in full.inner_text()
    _pick_source(page, 1)
    panel = page.locator("#qa-source .qa-source")
    panel.wait_for()
    assert SCRIPT_TEXT in panel.inner_text() and IMG_TEXT in panel.inner_text()
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("#qa-source script, #qa-source i").count() == 0

    assert _pwned(page) == ["undefined", "undefined", "undefined"]
    assert not [e for e in page.errors if "pwned" in e]
    _scroll_chat_to(page, page.locator('#qa-chat [data-testid="user"]').first)
    page.screenshot(path=str(ARTIFACTS / "hostile.png"))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_answer_text_is_readable_in_light_and_dark_themes(chromium, url, scheme):
    """Every part of an answer keeps a WCAG AA contrast (4.5:1) in Gradio's light and dark themes."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1000}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{url}?__theme={scheme}")
        _send(page, ANTIVIRAL)
        reply = _send(page, "Is ketamine useful for long covid?", expect=".qa-notcovered")
        assert "No summary seems to answer" in reply.inner_text()
        ratios = {}
        for selector in READABLE:
            found = page.locator(f"#qa-chat {selector}")
            assert found.count(), selector
            ratios[selector] = round(min(found.nth(i).evaluate(CONTRAST) for i in range(found.count())), 2)
        _scroll_chat_to(page, page.locator('#qa-chat [data-testid="user"]').last)
        page.screenshot(path=str(ARTIFACTS / f"theme-{scheme}.png"))
        assert {k: v for k, v in ratios.items() if v < 4.5} == {}, ratios
    finally:
        context.close()


def test_summary_markdown_in_a_passage_is_not_rendered(page):
    """A passage is document text: a Markdown link in a summary must not become a live link.

    Passages are escaped HTML, but the chat renders messages as Markdown, and after a blank
    line inside a passage the HTML block ends, so the rest of the passage is read as Markdown.
    """
    _new_conversation(page)
    reply = _send(page, "What do zorblatine levels in blood show?")
    first = reply.locator(".qa-study").first
    assert "second zorblatine paragraph" in first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "markdown-in-passage.png"))
    assert page.locator('#qa-chat a[href*="example.org"]').count() == 0
    assert first.locator(".qa-passage a").count() == 0, "summary text became a link"
    assert MD_LINK_TEXT in first.inner_text()
