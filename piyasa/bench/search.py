"""`piyasa bench search`: the help search's latency over all content (issue 17: p95 under
20 ms), against a same-run baseline that scans every document for the query's words.

Queries come from the content itself, in both languages: each entry's title words, the
same with a typo, in upper case with Turkish letters, typed without Turkish letters,
and each entry's real error text pasted whole (the signature path). Every query runs
``--rounds`` times; figures are milliseconds of one ``search`` call.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from piyasa.bench._common import pct

DESCRIPTION = "help search latency (p50/p95 ms) over all KB content vs a scanning baseline"
TARGET_P95_MS = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=3, help="times each query runs")
    parser.add_argument("--seed", type=int, default=17)


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :]  # one letter dropped


def queries(rng: random.Random) -> list[tuple[str, str]]:
    from piyasa.help.kb import LANGS, knowledge_base

    kb = knowledge_base()
    out: list[tuple[str, str]] = []
    for e in kb.entries.values():
        for lang in LANGS:
            words = [w for w in e.w(lang).title.replace(":", " ").split() if len(w) > 3][:3]
            plain = " ".join(words)
            out.append((plain, lang))
            out.append((" ".join(_typo(w, rng) for w in words), lang))
            out.append((plain.upper().replace("I", "İ"), lang))
            out.append((plain.translate(str.maketrans("ıişğçöü", "iisgcou")), lang))
            out.append((e.w(lang).symptoms, lang))  # a long, pasted text
    return out


def _baseline(docs: list[Any], query: str) -> list[Any]:
    from piyasa.help.search import fold, terms

    words = terms(query)
    scored = []
    for d in docs:
        text = fold(f"{d.title} {d.body}")
        n = sum(1 for w in words if w in text)
        if n:
            scored.append((n, d))
    scored.sort(key=lambda p: -p[0])
    return [d for _, d in scored[:10]]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from piyasa.help.kb import knowledge_base
    from piyasa.help.search import SearchIndex, kb_documents

    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    kb = knowledge_base()
    docs = kb_documents(kb)
    index = SearchIndex(docs, kb)
    build_ms = (time.perf_counter() - t0) * 1000
    qs = queries(rng)
    fts: list[float] = []
    scan: list[float] = []
    found = 0
    for _ in range(max(1, args.rounds)):
        for q, lang in qs:
            t = time.perf_counter()
            hits = index.search(q, lang)
            fts.append((time.perf_counter() - t) * 1000)
            found += bool(hits)
            t = time.perf_counter()
            _baseline(docs, q)
            scan.append((time.perf_counter() - t) * 1000)
    p95 = pct(fts, 0.95)
    return {
        "entries": len(kb.entries),
        "documents": len(docs),
        "queries": len(qs),
        "runs": len(fts),
        "index_build_ms": round(build_ms, 1),
        "search_ms": {"p50": round(pct(fts, 0.5) or 0, 3), "p95": round(p95 or 0, 3)},
        "baseline_scan_ms": {
            "p50": round(pct(scan, 0.5) or 0, 3),
            "p95": round(pct(scan, 0.95) or 0, 3),
        },
        "answered_share": round(found / len(fts), 3),
        "target_p95_ms": TARGET_P95_MS,
        "within_target": bool(p95 is not None and p95 < TARGET_P95_MS),
    }
