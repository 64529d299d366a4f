"""`piyasa kb search QUERY [--lang] [--json]` and `piyasa kb show ID`: the knowledge base
from the shell, readable when chat is down. Same content and search as `/kb`
(:mod:`piyasa.help.kb`, :mod:`piyasa.help.search`); no database needed."""

from __future__ import annotations

import argparse
import json
import os
from functools import cache
from typing import Any

from piyasa.help.kb import LANGS, Entry, knowledge_base
from piyasa.help.search import SearchIndex, kb_documents


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kb",
        help="the knowledge base of common errors: search, show",
        description="Search the knowledge base (words or a pasted error text) and show entries.",
    )
    ksub = p.add_subparsers(dest="kb_command", metavar="ACTION")
    default_lang = os.environ.get("PIYASA_LANG", "en")
    default_lang = default_lang if default_lang in LANGS else "en"

    def add(name: str, helptext: str, func: Any) -> argparse.ArgumentParser:
        sp = ksub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:])
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.add_argument("--lang", choices=LANGS, default=default_lang, help="tr or en")
        sp.set_defaults(func=func)
        return sp

    s = add("search", "the entries that best answer QUERY, best first", run_search)
    s.add_argument("query", nargs="+")
    s.add_argument("--limit", type=int, default=10)
    sh = add("show", "one entry: symptoms, cause, steps, fix, related", run_show)
    sh.add_argument("id")
    p.set_defaults(func=lambda _args: p.print_help() or 0)


@cache
def _index() -> SearchIndex:
    kb = knowledge_base()
    return SearchIndex(kb_documents(kb), kb)


def entry_json(entry: Entry, lang: str) -> dict[str, Any]:
    w = entry.w(lang)
    return {
        "id": entry.id,
        "category": entry.category,
        "title": w.title,
        "symptoms": w.symptoms,
        "cause": w.cause,
        "steps": list(w.steps),
        "fix": entry.fix,
        "related": list(entry.related),
    }


def run_search(args: argparse.Namespace) -> int:
    query = " ".join(args.query)
    hits = _index().search(query, args.lang, limit=max(1, min(args.limit, 50)))
    kb = knowledge_base()
    found = [(kb.entries[h.doc.ref], h.score) for h in hits if h.doc.kind == "kb"]
    if args.json:
        rows = [{"id": e.id, "title": e.w(args.lang).title, "score": round(s, 3)} for e, s in found]
        print(json.dumps({"query": query, "lang": args.lang, "results": rows}, indent=2))
    elif not found:
        cats = ", ".join(kb.categories)
        print(f"Nothing found for {query!r}. Try other words, or a category: {cats}.")
    else:
        for e, _s in found:
            print(f"{e.id:<26} {e.w(args.lang).title}")
    return 0 if found else 1


def run_show(args: argparse.Namespace) -> int:
    kb = knowledge_base()
    entry = kb.get(args.id.strip().lower())
    if entry is None:
        near = [h.doc.ref for h in _index().search(args.id.replace("-", " "), args.lang, limit=3)]
        hint = f" Closest: {', '.join(near)}." if near else ""
        print(f"piyasa: no knowledge-base entry {args.id!r}.{hint}")
        return 1
    data = entry_json(entry, args.lang)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(f"{data['title']}  [{entry.id}, {kb.category_title(entry.category, args.lang)}]")
    print(f"\n{data['symptoms']}\n\n{data['cause']}\n")
    for i, step in enumerate(data["steps"], 1):
        print(f"{i}. {step}")
    if entry.fix:
        print(f"\nfix: {entry.fix} (/kb {entry.id} → Apply fix)")
    if entry.related:
        print(f"related: {', '.join(entry.related)}")
    return 0
