"""The fixed texts of an answer in each language a question may be asked in.

The summaries are English and are quoted as written; only these few texts around them follow
the question's language (qa/models/multilingual.py tells which).
"""

from __future__ import annotations

# Fixed texts of an answer. Short on purpose: only what every answer or the app shows.
UI_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "preparing": "The search for questions in other languages is still being prepared. Please "
        "ask again in a minute, or ask in English.",
        "notice": "The summaries are in English; passages are quoted as written.",
        "not_covered": "No summary seems to answer this question.",
        "closest": "Closest passages, which may not answer it:",
        "in_short": "In short, quoted from the summaries",
        "studies": "Studies",
        "disclaimer": "These are plain-language research summaries, not medical advice. "
        "Talk to a clinician before changing any treatment.",
    },
    "de": {
        "preparing": "Die Suche für Fragen in anderen Sprachen wird noch vorbereitet. Bitte fragen "
        "Sie in einer Minute noch einmal oder fragen Sie auf Englisch.",
        "notice": "Die Zusammenfassungen sind auf Englisch; die Passagen werden im Original zitiert.",
        "not_covered": "Keine Zusammenfassung scheint diese Frage zu beantworten.",
        "closest": "Die nächstliegenden Passagen, die die Frage vielleicht nicht beantworten:",
        "in_short": "Kurz gesagt, zitiert aus den Zusammenfassungen",
        "studies": "Studien",
        "disclaimer": "Dies sind allgemein verständliche Zusammenfassungen von Studien, keine "
        "medizinische Beratung. Sprechen Sie mit einer Ärztin oder einem Arzt, bevor Sie eine "
        "Behandlung ändern.",
    },
    "es": {
        "preparing": "La búsqueda para preguntas en otros idiomas aún se está preparando. Vuelva a "
        "preguntar en un minuto o pregunte en inglés.",
        "notice": "Los resúmenes están en inglés; los pasajes se citan tal como están escritos.",
        "not_covered": "Ningún resumen parece responder a esta pregunta.",
        "closest": "Los pasajes más cercanos, que quizá no la respondan:",
        "in_short": "En resumen, citado de los resúmenes",
        "studies": "Estudios",
        "disclaimer": "Son resúmenes de investigaciones en lenguaje sencillo, no consejo médico. "
        "Consulte a un profesional sanitario antes de cambiar cualquier tratamiento.",
    },
    "fr": {
        "preparing": "La recherche pour les questions dans d’autres langues est encore en "
        "préparation. Reposez la question dans une minute, ou posez-la en anglais.",
        "notice": "Les résumés sont en anglais ; les passages sont cités tels quels.",
        "not_covered": "Aucun résumé ne semble répondre à cette question.",
        "closest": "Les passages les plus proches, qui n'y répondent peut-être pas :",
        "in_short": "En bref, cité des résumés",
        "studies": "Études",
        "disclaimer": "Ce sont des résumés de recherche en langage simple, pas des conseils "
        "médicaux. Parlez-en à un médecin avant de modifier un traitement.",
    },
    "nl": {
        "preparing": "Het zoeken voor vragen in andere talen wordt nog voorbereid. Vraag het over "
        "een minuut opnieuw, of vraag het in het Engels.",
        "notice": "De samenvattingen zijn in het Engels; de passages worden geciteerd zoals ze "
        "geschreven zijn.",
        "not_covered": "Geen enkele samenvatting lijkt deze vraag te beantwoorden.",
        "closest": "De dichtstbijzijnde passages, die de vraag misschien niet beantwoorden:",
        "in_short": "In het kort, geciteerd uit de samenvattingen",
        "studies": "Studies",
        "disclaimer": "Dit zijn samenvattingen van onderzoek in eenvoudige taal, geen medisch "
        "advies. Overleg met een arts voordat u een behandeling verandert.",
    },
    "it": {
        "preparing": "La ricerca per domande in altre lingue è ancora in preparazione. Riprovi tra "
        "un minuto, oppure chieda in inglese.",
        "notice": "I riassunti sono in inglese; i passaggi sono citati così come sono scritti.",
        "not_covered": "Nessun riassunto sembra rispondere a questa domanda.",
        "closest": "I passaggi più vicini, che potrebbero non rispondere:",
        "in_short": "In breve, citato dai riassunti",
        "studies": "Studi",
        "disclaimer": "Questi sono riassunti di ricerche in linguaggio semplice, non consigli "
        "medici. Ne parli con un medico prima di cambiare qualsiasi terapia.",
    },
}


def ui_text(lang: str, key: str) -> str:
    """One fixed text in `lang`, falling back to English for an unknown language."""
    return UI_TEXT.get(lang, UI_TEXT["en"])[key]


def notice(lang: str) -> str:
    """ "The summaries are in English", in `lang`; empty for English (nothing to say)."""
    return "" if lang == "en" or lang not in UI_TEXT else UI_TEXT[lang]["notice"]
