"""Health summaries in the reader's language.

A reading carries its summary as phrases (:mod:`piyasa.admin.health.words`); each is said
through the catalogue key ``health.phrase.<key>``, and a figure that names a state or a
kind ("open", "probe") through ``health.word.<value>`` when the catalogue has it. Older
readings without phrases (fixed words like "not running") use ``health.summary.<text>``;
anything else is figures and shows as it is.
"""

from __future__ import annotations

from typing import Any

from chatops import i18n
from piyasa.admin.health import Reading
from piyasa.admin.health.words import RAW, Phrase


def _figure(lang: str, value: Any) -> Any:
    key = f"health.word.{value}"
    return i18n.t(lang, key) if isinstance(value, str) and i18n.has(key) else value


def phrase_text(lang: str, p: Phrase) -> str:
    """One phrase in ``lang``."""
    if p.key == RAW:
        return str(p.params.get("text", ""))
    params = {k: _figure(lang, v) for k, v in p.params.items()}
    return i18n.t(lang, f"health.phrase.{p.key}", **params)


def summary_text(lang: str, reading: Reading) -> str:
    """The reading's summary line in ``lang`` ("tr" or "en")."""
    if reading.phrases:
        return "".join(
            (p.sep if i else "") + phrase_text(lang, p) for i, p in enumerate(reading.phrases)
        )
    key = f"health.summary.{reading.summary}"
    return i18n.t(lang, key) if i18n.has(key) else reading.summary
