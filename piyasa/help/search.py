"""One search over the help content (knowledge base, command help, later the guide):
typo-tolerant, Turkish-aware, ranked.

Text is *folded* before it is indexed and before it is looked up: Turkish dotted and
dotless i (İ I ı i), ş ğ ç ö ü and other diacritics become plain ASCII letters and
everything is case-folded, so "İzin", "izin" and "IZIN", or "şifre" and "sifre", find
the same entries. The index is SQLite FTS5 in memory (no server; bm25 ranking, titles
weighted ten times the body). A query runs in up to two rounds:

1. every word, as a prefix ("yedek" finds "yedekleme"), must appear (AND);
2. if that leaves room, any word may appear (OR), each word also by its close spellings
   from the index's own vocabulary (trigram Dice similarity, so "databse" finds
   "database") and, for long words, by its stem without a Turkish suffix.

An error text pasted as the query ("Bad Request: chat not found") is also run through
the knowledge base's signatures (:func:`piyasa.help.kb.KnowledgeBase.match`): what they
recognise comes first.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from piyasa.help.kb import LANGS, KnowledgeBase

MAX_QUERY_CHARS = 200
MAX_TERMS = 12
MIN_TERM = 2
DICE_CUTOFF = 0.5
CLOSE_PER_TERM = 3
MAX_FUZZY = 40  # longer words are not corrected (no word in the content is that long)
TITLE_WEIGHT = 10.0

_TR = str.maketrans(
    {"İ": "i", "I": "i", "ı": "i", "Ş": "s", "ş": "s", "Ğ": "g", "ğ": "g", "Ç": "c", "ç": "c"}
)
_WORD = re.compile(r"[a-z0-9_]+")


def fold(text: str) -> str:
    """``text`` case-folded to plain ASCII-ish letters, Turkish-aware: both i's (and
    their capitals) become ``i``; ş ğ ç ö ü (and any other diacritic) lose their marks."""
    text = (text or "").translate(_TR)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(text: str) -> list[str]:
    """The folded words of ``text`` worth looking up (at most ``MAX_TERMS``)."""
    words = _WORD.findall(fold(text[:MAX_QUERY_CHARS]))
    out: list[str] = []
    for w in words:
        if len(w) >= MIN_TERM and w not in out:
            out.append(w)
    return out[:MAX_TERMS]


def _trigrams(word: str) -> set[str]:
    padded = f"  {word} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


@dataclass(frozen=True)
class Doc:
    """One searchable document: ``kind`` ("kb", "cmd", "doc") and ``ref`` (the entry
    id, command name or page) say what to open; ``lang`` which language it is in."""

    kind: str
    ref: str
    lang: str
    title: str
    body: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ref}"


@dataclass(frozen=True)
class Hit:
    doc: Doc
    score: float  # higher is better; comparable within one result list only


class SearchIndex:
    """An in-memory FTS5 index of :class:`Doc` with a vocabulary for close spellings."""

    def __init__(self, docs: Iterable[Doc], kb: KnowledgeBase | None = None) -> None:
        self.kb = kb
        self.docs: list[Doc] = list(docs)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE docs USING fts5("
            "title, body, lang UNINDEXED, tokenize='unicode61 remove_diacritics 2')"
        )
        self._db.executemany(
            "INSERT INTO docs(rowid, title, body, lang) VALUES (?, ?, ?, ?)",
            [(i, fold(d.title), fold(d.body), d.lang) for i, d in enumerate(self.docs)],
        )
        vocab: set[str] = set()
        for d in self.docs:
            vocab.update(_WORD.findall(fold(f"{d.title} {d.body}")))
        self.vocab = frozenset(w for w in vocab if len(w) >= 3)
        self._by_gram: dict[str, list[str]] = defaultdict(list)
        self._grams_of: dict[str, int] = {}
        for w in self.vocab:
            grams = _trigrams(w)
            self._grams_of[w] = len(grams)
            for g in grams:
                self._by_gram[g].append(w)

    def close_words(self, term: str) -> list[str]:
        """Vocabulary words spelled like ``term`` (not ``term`` itself), closest first, by
        the Dice coefficient of their padded trigrams (at least ``DICE_CUTOFF``)."""
        if not 4 <= len(term) <= MAX_FUZZY:
            return []
        grams = _trigrams(term)
        shared: Counter[str] = Counter()
        for g in grams:
            shared.update(self._by_gram.get(g, ()))
        shared.pop(term, None)
        scored = [
            (w, 2 * n / (len(grams) + self._grams_of[w]))
            for w, n in shared.items()
            if abs(len(w) - len(term)) <= 3
        ]
        scored = [(w, s) for w, s in scored if s >= DICE_CUTOFF]
        scored.sort(key=lambda p: (-p[1], p[0]))
        return [w for w, _ in scored[:CLOSE_PER_TERM]]

    def _run(self, match: str, lang: str | None, limit: int) -> list[tuple[int, float]]:
        sql = f"SELECT rowid, bm25(docs, {TITLE_WEIGHT}, 1.0) AS r FROM docs WHERE docs MATCH ?"
        params: list[object] = [match]
        if lang:
            sql += " AND lang = ?"
            params.append(lang)
        sql += " ORDER BY r LIMIT ?"
        params.append(limit)
        with self._lock:
            try:
                rows = self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError:
                return []
        return [(rowid, -rank) for rowid, rank in rows]

    def search(self, query: str, lang: str = "en", *, limit: int = 10) -> list[Hit]:
        """The documents in ``lang`` that best answer ``query``, best first, at most
        ``limit``; documents in another language are used only when it answers the query
        better (all words found there, not in ``lang``) or ``lang`` has nothing.
        An empty or meaningless query gives an empty list (never an error)."""
        limit = max(1, min(limit, 50))
        langs = [lang, *(other for other in LANGS if other != lang)] if lang in LANGS else [None]
        words = terms(query)
        recognised: set[str] = set()
        if self.kb is not None:  # a pasted error text: what the signatures recognise first
            recognised = {e.id for e, _ in self.kb.match(query[:2000])}
        # the first language in which every word is found (or a signature recognises the
        # text), else the first with any hit: Turkish words typed by an English reader
        # find the Turkish entries
        for one in langs:
            strict = self._strict(words, recognised, one, limit)
            if strict:
                return self._ranked(self._loose(strict, words, one, limit), limit)
        for one in langs:
            loose = self._loose({}, words, one, limit)
            if loose:
                return self._ranked(loose, limit)
        return []

    def _strict(
        self, words: list[str], recognised: set[str], lang: str | None, limit: int
    ) -> dict[int, float]:
        """Recognised entries (first), then documents holding every word as a prefix."""
        found = {
            i: 1000.0
            for i, d in enumerate(self.docs)
            if d.kind == "kb" and d.ref in recognised and (lang is None or d.lang == lang)
        }
        if words:
            for rowid, score in self._run(" AND ".join(f'"{w}"*' for w in words), lang, limit):
                found.setdefault(rowid, score + 100.0)
        return found

    def _loose(
        self, found: dict[int, float], words: list[str], lang: str | None, limit: int
    ) -> dict[int, float]:
        """``found`` topped up with documents holding any word, its close spellings, or
        (long words) its stem without a two-letter suffix."""
        if not words or len(found) >= limit:
            return found
        alts: list[str] = []
        for w in words:
            alts.append(f'"{w}"*')
            if w not in self.vocab:
                alts.extend(f'"{c}"' for c in self.close_words(w))
                if len(w) >= 6:
                    alts.append(f'"{w[: len(w) - 2]}"*')
        out = dict(found)
        for rowid, score in self._run(" OR ".join(alts), lang, limit):
            out.setdefault(rowid, score)
        return out

    def _ranked(self, found: dict[int, float], limit: int) -> list[Hit]:
        ranked = sorted(found, key=lambda i: -found[i])[:limit]
        return [Hit(self.docs[i], found[i]) for i in ranked]


def kb_documents(kb: KnowledgeBase) -> list[Doc]:
    """One document per entry and language: title, then symptoms, cause, steps and the
    category's name (so "telegram" or "veritabanı" finds a whole category)."""
    docs = []
    for e in kb.entries.values():
        for lang in LANGS:
            w = e.w(lang)
            body = " ".join(
                [w.symptoms, w.cause, *w.steps, kb.category_title(e.category, lang), e.id]
            )
            docs.append(Doc("kb", e.id, lang, w.title, body))
    return docs
