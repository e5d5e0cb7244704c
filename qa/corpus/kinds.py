"""Source and study kinds: what a study's link leads to, and the designs its summary names."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from qa.corpus.citations import Citation

_TRIAL_HOSTS = ("clinicaltrials.gov", "clinicaltrials.eu", "clinicaltrialsregister.eu", "drks.de", "isrctn")
_VIDEO_HOSTS = ("youtube.com", "youtu.be", "vimeo.com")
_PREPRINT = re.compile(r"\b(preprint|medrxiv|biorxiv|research square|ssrn)\b", re.I)


def source_kind(citation: Citation) -> str:
    """What the study's link leads to, read from the link and publisher: "Paper (DOI)", "Video" …"""
    host = (urlparse(citation.url).hostname or "").lower()
    on = lambda hosts: any(host == h or host.endswith("." + h) for h in hosts)  # noqa: E731
    if not citation.url:
        return ""
    if on(_VIDEO_HOSTS):
        return "Video"
    if on(_TRIAL_HOSTS):
        return "Trial registration"
    if citation.doi:
        preprint = _PREPRINT.search(citation.publisher) or citation.doi.startswith("10.1101/")
        return "Preprint (DOI)" if preprint else "Paper (DOI)"
    if "News" in citation.tags:
        return "News"
    if on(("pubmed.ncbi.nlm.nih.gov", "ncbi.nlm.nih.gov")):
        return "Paper (PubMed)"
    if on(("medrxiv.org", "biorxiv.org", "researchsquare.com")):
        return "Preprint"
    if on(("patents.google.com",)):
        return "Patent"
    if on(("s4me.info", "phoenixrising.me", "reddit.com")):
        return "Forum post"
    return "Web page"


# Study designs a summary names in so many words. Sentences about what should happen next
# ("a randomised trial is needed") say nothing about this study, so they are skipped.
_DESIGNS = [
    ("Systematic review", r"\bsystematic (literature )?review\b"),
    ("Meta-analysis", r"\bmeta-analys[ie]s\b"),
    ("Review", r"\b(narrative|literature|scoping|umbrella) review\b"),
    ("Randomised", r"\brandomi[sz]ed\b"),
    ("Placebo-controlled", r"\bplacebo[- ]controlled\b"),
    ("Double-blind", r"\bdouble[- ]blind(ed)?\b"),
    ("Open-label", r"\bopen[- ]label\b"),
    ("Observational", r"\b(observational|cohort study|cross-sectional|case-control)\b"),
    ("Case report", r"\bcase (report|series)\b"),
    ("Animal study", r"\b(mice|mouse|murine|rats|rodents?)\b"),
    ("Lab study (in vitro)", r"\bin vitro\b"),
]
_FUTURE = re.compile(
    r"\b(future|should|needed|need|would|could|recommend\w*|call(s|ed)? for|plan\w*)\b", re.I
)


def study_types(texts: list[str]) -> list[str]:
    """The study designs the summary itself names ("Randomised", "Animal study" …), never guessed."""
    # Here, not at the top: showing a source kind (`qa ask` via a server) needs no chunker.
    from qa.corpus.chunking import split_sentences

    found = []
    sentences = [s for t in texts for s in split_sentences(t) if not _FUTURE.search(s)]
    for name, pattern in _DESIGNS:
        if any(re.search(pattern, s, re.I) for s in sentences):
            found.append(name)
    if {"Systematic review", "Meta-analysis", "Review"} & set(found):
        # A review names the designs of the studies it pooled; those are not its own.
        found = [n for n in found if n in ("Systematic review", "Meta-analysis", "Review")]
    return found
