"""Message catalogs (tr, en). Every user-facing string on every surface comes from here.

Keys are dotted (``refuse.role``); values are ``str.format`` templates. Values are plain
text: renderers escape them for HTML or Slack mrkdwn, so a catalog can never inject markup.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

LANGS = ("tr", "en")
_DIR = Path(__file__).parent / "locales"
log = logging.getLogger(__name__)


@cache
def catalog(lang: str) -> dict[str, str]:
    """``locales/<lang>.json`` merged with each capability's ``locales/<lang>/*.json``.

    Capabilities keep their strings in their own file so they never edit a shared one;
    a key defined twice is a bug and fails loudly.
    """
    with open(_DIR / f"{lang}.json", encoding="utf-8") as fh:
        merged: dict[str, str] = json.load(fh)
    for part in sorted((_DIR / lang).glob("*.json")):
        with open(part, encoding="utf-8") as fh:
            extra = json.load(fh)
        clash = merged.keys() & extra.keys()
        if clash:
            raise ValueError(f"catalog keys defined twice ({part.name}): {sorted(clash)[:5]}")
        merged.update(extra)
    return merged


def has(key: str) -> bool:
    return all(key in catalog(lang) for lang in LANGS)


def t(lang: str, key: str, /, **kwargs: object) -> str:
    """The ``key`` text in ``lang`` (falls back to English, then to the key itself)."""
    template = catalog(lang if lang in LANGS else "en").get(key)
    if template is None:
        log.warning("missing catalog key %s (%s)", key, lang)
        template = catalog("en").get(key, key)
    if not kwargs:
        return template
    try:
        return template.format(**kwargs)
    except (KeyError, IndexError, ValueError):
        log.warning("bad placeholders for catalog key %s (%s)", key, lang)
        return template


def normalize_lang(code: str | None) -> str | None:
    """'tr', 'tr-TR', 'en-US' -> 'tr'/'en'; anything else -> None."""
    if not code:
        return None
    base = code.split("-")[0].split("_")[0].lower()
    return base if base in LANGS else None


def choose_lang(user_lang: str | None, client_lang: str | None, default: str) -> str:
    """A linked user's choice wins, then the client's language, then PIYASA_LANG."""
    return normalize_lang(user_lang) or normalize_lang(client_lang) or default
