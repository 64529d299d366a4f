"""The knowledge base of common errors: entries loaded from ``content/kb/*.yaml``.

An entry is language-neutral data (id, category, signatures, fix, related) plus, for each
of ``LANGS``, the words a reader sees (title, symptoms, cause, steps). Content is data,
not code: :func:`load` reads and validates every file once (a bad file fails loudly at
start-up, naming the file and entry), and :func:`match` recognises an entry in a real
error text — what ``/diagnose`` and the log analyzer use to name a cause.

Signatures are case-insensitive regular expressions with a weight (``w``, default 1): a
specific description ("bot was kicked from the group chat") weighs more than a generic
exception class name. Platform facts behind the signatures: the Telegram Bot API
descriptions (as aiogram reports them), the openai SDK's error codes, SQLAlchemy / asyncpg
/ aiosqlite / redis-py exception texts, Slack Web API error strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LANGS = ("tr", "en")
CONTENT = Path(__file__).parent / "content"
TEXT_FIELDS = ("title", "symptoms", "cause")
ID_RE = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
FIXES = (
    "lower_scale",
    "reset_breakers",
    "restart_workers",
    "clear_cache",
    "run_checks",
    "change_llm_model",
    "change_llm_base_url",
)
"""Fix ids an entry may name. Each is an existing action (a health quick action or a
settings change); the chat surfaces map it to that action's button, so the fix runs with
that action's handler and role rule (``chatops.commands.kb.FIX_BUTTONS``)."""


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: ~10x faster


def _yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a safe loader


class ContentError(ValueError):
    """A content file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Signature:
    """``pattern`` recognises the entry unless ``unless`` (when given) also matches: a
    neighbour's wording that contains the same words ("Unauthorized" from Slack)."""

    pattern: re.Pattern[str]
    weight: float
    unless: re.Pattern[str] | None = None

    def hits(self, text: str) -> bool:
        return bool(self.pattern.search(text)) and not (
            self.unless is not None and self.unless.search(text)
        )


@dataclass(frozen=True)
class Words:
    """What a reader sees of an entry in one language."""

    title: str
    symptoms: str
    cause: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    id: str
    category: str
    signatures: tuple[Signature, ...]
    fix: str | None
    related: tuple[str, ...]
    words: dict[str, Words]
    source: str  # the content file it came from

    def w(self, lang: str) -> Words:
        """The words in ``lang`` (English when ``lang`` is not one of ``LANGS``)."""
        return self.words.get(lang) or self.words["en"]

    def score(self, text: str) -> float:
        """How strongly ``text`` looks like this entry: the heaviest matching signature
        plus a tenth per further match; 0.0 when none matches."""
        hits = [s.weight for s in self.signatures if s.hits(text)]
        if not hits:
            return 0.0
        return max(hits) + 0.1 * (len(hits) - 1)


@dataclass(frozen=True)
class KnowledgeBase:
    entries: dict[str, Entry]
    categories: dict[str, dict[str, str]]  # id -> {lang: title}, in browsing order

    def get(self, entry_id: str) -> Entry | None:
        return self.entries.get(entry_id)

    def in_category(self, category: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.category == category]

    def category_title(self, category: str, lang: str) -> str:
        names = self.categories.get(category, {})
        return names.get(lang) or names.get("en") or category

    def match(self, error_text: str, *, limit: int = 5) -> list[tuple[Entry, float]]:
        """The entries whose signatures recognise ``error_text``, best first, as
        ``(entry, score)``; scores are comparable across entries (see :meth:`Entry.score`).
        Empty for text no entry recognises."""
        text = (error_text or "")[:20_000]
        scored = [(e, e.score(text)) for e in self.entries.values()]
        hits = [(e, s) for e, s in scored if s > 0]
        hits.sort(key=lambda pair: (-pair[1], pair[0].id))
        return hits[:limit]


def _words(data: Any, where: str) -> Words:
    if not isinstance(data, dict):
        raise ContentError(f"{where}: missing")
    for name in TEXT_FIELDS:
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise ContentError(f"{where}: {name} missing or empty")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s for s in steps):
        raise ContentError(f"{where}: steps must be a non-empty list of texts")
    return Words(*(data[n].strip() for n in TEXT_FIELDS), tuple(s.strip() for s in steps))


def _signature(raw: Any, where: str) -> Signature:
    if not isinstance(raw, dict):
        raw = {"re": raw}
    pattern, weight, unless = raw.get("re"), raw.get("w", 1), raw.get("unless")
    if not isinstance(pattern, str) or not pattern:
        raise ContentError(f"{where}: a signature needs a pattern")
    try:
        return Signature(
            re.compile(pattern, re.IGNORECASE),
            float(weight),
            re.compile(unless, re.IGNORECASE) if unless else None,
        )
    except re.error as exc:
        raise ContentError(f"{where}: bad pattern {pattern!r}: {exc}") from None


def _entry(raw: Any, source: str, categories: dict[str, Any]) -> Entry:
    if not isinstance(raw, dict) or not ID_RE.match(str(raw.get("id", ""))):
        raise ContentError(f"{source}: an entry without a valid id: {str(raw)[:80]}")
    where = f"{source}: {raw['id']}"
    if raw.get("category") not in categories:
        raise ContentError(f"{where}: unknown category {raw.get('category')!r}")
    sigs = raw.get("signatures") or []
    if not sigs:
        raise ContentError(f"{where}: no signatures")
    fix = raw.get("fix")
    if fix is not None and fix not in FIXES:
        raise ContentError(f"{where}: unknown fix {fix!r} (known: {FIXES})")
    return Entry(
        id=raw["id"],
        category=raw["category"],
        signatures=tuple(_signature(s, where) for s in sigs),
        fix=fix,
        related=tuple(raw.get("related") or ()),
        words={lang: _words(raw.get(lang), f"{where} [{lang}]") for lang in LANGS},
        source=source,
    )


def load(root: Path = CONTENT) -> KnowledgeBase:
    """Read and validate every entry under ``root``; :class:`ContentError` on any flaw
    (missing language or field, duplicate id, unknown category, fix or related entry)."""
    categories = _yaml(root / "categories.yaml")
    for cat, names in categories.items():
        if not all(isinstance(names, dict) and names.get(lang) for lang in LANGS):
            raise ContentError(f"categories.yaml: {cat} needs a title in {LANGS}")
    entries: dict[str, Entry] = {}
    for path in sorted((root / "kb").glob("*.yaml")):
        for raw in _yaml(path) or []:
            entry = _entry(raw, path.name, categories)
            if entry.id in entries:
                raise ContentError(f"{path.name}: {entry.id} defined twice")
            entries[entry.id] = entry
    for entry in entries.values():
        unknown = [r for r in entry.related if r not in entries or r == entry.id]
        if unknown:
            raise ContentError(f"{entry.source}: {entry.id}: unknown related {unknown}")
    order = list(categories)
    ordered = sorted(entries.values(), key=lambda e: order.index(e.category))
    return KnowledgeBase({e.id: e for e in ordered}, categories)


def load_screens(entries: dict[str, Entry], root: Path = CONTENT) -> dict[str, tuple[str, ...]]:
    """``screens.yaml``: command name -> the related entry ids of its "?" target;
    :class:`ContentError` for an entry id that does not exist."""
    raw = _yaml(root / "screens.yaml") or {}
    out: dict[str, tuple[str, ...]] = {}
    for name, ids in raw.items():
        unknown = [i for i in ids or () if i not in entries]
        if unknown:
            raise ContentError(f"screens.yaml: {name}: unknown entries {unknown}")
        out[str(name)] = tuple(ids or ())
    return out


@cache
def screens() -> dict[str, tuple[str, ...]]:
    """The product's "?" targets (command -> related entry ids), loaded once."""
    return load_screens(knowledge_base().entries)


@cache
def knowledge_base() -> KnowledgeBase:
    """The product's knowledge base, loaded once per process."""
    return load()


def match(error_text: str, *, limit: int = 5) -> list[tuple[Entry, float]]:
    """:meth:`KnowledgeBase.match` on the product's knowledge base."""
    return knowledge_base().match(error_text, limit=limit)
