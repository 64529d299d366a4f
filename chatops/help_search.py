"""The one help search of the chat surfaces: the knowledge base plus every command's
help text, in tr and en (:class:`piyasa.help.search.SearchIndex`), built once per process
on first use. ``/kb`` reads it; ``/help QUERY`` and ``/docs search`` are meant to read the
same index (add their documents in :func:`documents`)."""

from __future__ import annotations

from functools import cache

from chatops import i18n
from piyasa.help.kb import LANGS, knowledge_base
from piyasa.help.search import Doc, SearchIndex, kb_documents


def command_documents() -> list[Doc]:
    """One document per visible command and language: ``/name`` and its help text."""
    from chatops.commands import load_all

    docs = []
    for cmd in load_all().commands.values():
        if cmd.hidden:
            continue
        for lang in LANGS:
            docs.append(Doc("cmd", cmd.id, lang, f"/{cmd.id} {cmd.id}", i18n.t(lang, cmd.help_key)))
    return docs


def documents() -> list[Doc]:
    from piyasa.help import guides

    return [*kb_documents(knowledge_base()), *command_documents(), *guides.documents()]


@cache
def index() -> SearchIndex:
    """The shared index (knowledge base + command help + the guide and its FAQ)."""
    return SearchIndex(documents(), knowledge_base())
