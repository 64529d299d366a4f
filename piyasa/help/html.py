"""The user guide and the knowledge base as static HTML (served under ``/docs``).

The same Markdown files `/docs` shows in chat (:mod:`piyasa.help.guides`) and the same KB
entries `/kb` shows (:mod:`piyasa.help.kb`) are rendered here with markdown-it-py
(CommonMark, raw HTML **off**: a ``<script>`` in a page comes out as text). Links are
rewritten to the HTML routes:

- ``[Alerts](alerts.md)`` → ``/docs/<lang>/alerts``
- `` `/kb tg-429` `` → ``/docs/<lang>/kb/tg-429`` (the entry's page)
- `` `/docs alerts` `` → ``/docs/<lang>/alerts``

Everything else in the content is escaped. Nothing here touches the database or any other
service: the guide stays readable when chat and the database are down. Pure functions
returning ``str``; the aiohttp routes are :mod:`chatops.web.docs`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from html import escape
from importlib import resources
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from piyasa.help import guides
from piyasa.help.kb import LANGS, Entry, knowledge_base

PREFIX = "/docs"
PAGE_LINK = re.compile(r"^([a-z0-9-]+)\.md(#[A-Za-z0-9_-]*)?$")
KB_CODE = re.compile(r"^/kb ([a-z0-9-]+)$")
DOCS_CODE = re.compile(r"^/docs ([a-z0-9-]+)$")

WORDS = {
    "en": {
        "guide": "Piyasa user guide",
        "pages": "Guide",
        "kb": "Knowledge base",
        "kb_intro": "Common errors: what they mean and what to do. In chat: /kb WORDS.",
        "symptoms": "Symptoms",
        "cause": "Cause",
        "steps": "What to do",
        "related": "Related",
        "fix": "An automatic fix exists: open this entry in chat (/kb {id}) and press "
        "🛠 Apply fix (operators).",
        "index": "Contents",
        "other": "Türkçe",
        "footer": "This guide is served by Piyasa itself and needs no database: it stays "
        "readable when chat is down. The same pages are in chat: /docs.",
        "not_found": "There is no such page.",
        "closest": "Closest pages:",
    },
    "tr": {
        "guide": "Piyasa kullanım kılavuzu",
        "pages": "Kılavuz",
        "kb": "Bilgi bankası",
        "kb_intro": "Sık görülen hatalar: ne anlama gelirler, ne yapılır. Sohbette: /kb KELİMELER.",
        "symptoms": "Belirtiler",
        "cause": "Neden",
        "steps": "Ne yapmalı",
        "related": "İlgili",
        "fix": "Otomatik bir düzeltme var: bu kaydı sohbette açın (/kb {id}) ve "
        "🛠 Düzeltmeyi uygula düğmesine basın (operatörler).",
        "index": "İçindekiler",
        "other": "English",
        "footer": "Bu kılavuzu Piyasa kendisi sunar ve veritabanına ihtiyaç duymaz: sohbet "
        "çalışmazken de okunur. Aynı sayfalar sohbette: /docs.",
        "not_found": "Böyle bir sayfa yok.",
        "closest": "En yakın sayfalar:",
    },
}


def _w(lang: str, key: str, **values: str) -> str:
    text = WORDS[lang][key]
    return text.format(**values) if values else text


@cache
def css() -> str:
    """The stylesheet, inlined in every page (screen and ``@media print``)."""
    return resources.files("piyasa.help").joinpath("content/docs.css").read_text("utf-8")


@cache
def style_hash() -> str:
    """The CSP source for the inline stylesheet: ``'sha256-…'``."""
    digest = hashlib.sha256(css().encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_url(lang: str, slug: str) -> str:
    return f"{PREFIX}/{lang}/{slug}"


def kb_url(lang: str, entry_id: str | None = None) -> str:
    return f"{PREFIX}/{lang}/kb" + (f"/{entry_id}" if entry_id else "")


def index_url(lang: str) -> str:
    return f"{PREFIX}/{lang}"


def _md(lang: str) -> MarkdownIt:
    """CommonMark with tables, raw HTML off, and our link rewriting."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    kb = knowledge_base()

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        href = str(token.attrGet("href") or "")
        found = PAGE_LINK.match(href)
        if found:
            token.attrSet("href", page_url(lang, found.group(1)) + (found.group(2) or ""))
        elif href.startswith(("http://", "https://")):
            token.attrSet("rel", "noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    def code_inline(_renderer: Any, tokens: Any, idx: int, _options: Any, _env: Any) -> str:
        content = tokens[idx].content
        code = f"<code>{escapeHtml(content)}</code>"
        kb_ref, docs_ref = KB_CODE.match(content), DOCS_CODE.match(content)
        if kb_ref and kb.get(kb_ref.group(1)) is not None:
            return f'<a href="{kb_url(lang, kb_ref.group(1))}">{code}</a>'
        if docs_ref and docs_ref.group(1) in guides.ORDER:
            return f'<a href="{page_url(lang, docs_ref.group(1))}">{code}</a>'
        return code

    md.add_render_rule("link_open", link_open)
    md.add_render_rule("code_inline", code_inline)
    return md


@cache
def _renderer(lang: str) -> MarkdownIt:
    return _md(lang)


def markdown(text: str, lang: str) -> str:
    """Markdown → HTML with raw HTML escaped and guide/KB links rewritten."""
    return _renderer(lang).render(text)


def _inline(text: str, lang: str) -> str:
    return _renderer(lang).renderInline(text)


def _layout(lang: str, title: str, body: str, other_url: str) -> str:
    other = "en" if lang == "tr" else "tr"
    return (
        f'<!doctype html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)} · {_w(lang, 'guide')}</title>\n"
        f"<style>{css()}</style>\n</head>\n<body>\n"
        f'<header><nav><a href="{index_url(lang)}">{_w(lang, "guide")}</a>'
        f'<a href="{kb_url(lang)}">{_w(lang, "kb")}</a>'
        f'<a href="{other_url}" hreflang="{other}" lang="{other}">{_w(lang, "other")}</a>'
        "</nav></header>\n"
        f"<main>\n{body}\n</main>\n"
        f"<footer><p>{escape(_w(lang, 'footer'))}</p></footer>\n</body>\n</html>\n"
    )


def _other(lang: str) -> str:
    return "en" if lang == "tr" else "tr"


def render_index(lang: str) -> str:
    """The contents: every guide page, then the link to the knowledge base."""
    items = "".join(
        f'<li><a href="{page_url(lang, slug)}">{escape(page.title)}</a></li>'
        for slug in guides.ORDER
        if (page := guides.get(slug, lang)) is not None
    )
    body = (
        f"<h1>{escape(_w(lang, 'guide'))}</h1>\n<h2>{escape(_w(lang, 'index'))}</h2>\n"
        f'<ol class="toc">{items}</ol>\n<h2>{escape(_w(lang, "kb"))}</h2>\n'
        f'<p><a href="{kb_url(lang)}">{escape(_w(lang, "kb_intro"))}</a></p>'
    )
    return _layout(lang, _w(lang, "index"), body, index_url(_other(lang)))


def render_page(slug: str, lang: str) -> str | None:
    """One guide page, or None when ``slug`` is not a page."""
    page = guides.get(slug, lang)
    if page is None:
        return None
    body = f"<article>\n<h1>{escape(page.title)}</h1>\n{markdown(page.body, lang)}</article>"
    return _layout(lang, page.title, body, page_url(_other(lang), slug))


def render_kb_index(lang: str) -> str:
    """Every KB entry, by category in browsing order."""
    kb = knowledge_base()
    parts = [f"<h1>{escape(_w(lang, 'kb'))}</h1>", f"<p>{escape(_w(lang, 'kb_intro'))}</p>"]
    for category in kb.categories:
        entries = kb.in_category(category)
        if not entries:
            continue
        items = "".join(
            f'<li><a href="{kb_url(lang, e.id)}">{escape(e.w(lang).title)}</a></li>'
            for e in entries
        )
        parts.append(f"<h2>{escape(kb.category_title(category, lang))}</h2><ul>{items}</ul>")
    return _layout(lang, _w(lang, "kb"), "\n".join(parts), kb_url(_other(lang)))


def _entry_body(entry: Entry, lang: str) -> str:
    kb = knowledge_base()
    words = entry.w(lang)
    steps = "".join(f"<li>{_inline(s, lang)}</li>" for s in words.steps)
    out = [
        f"<h1>{escape(words.title)}</h1>",
        f'<p class="kb-id"><code>/kb {escape(entry.id)}</code> · '
        f"{escape(kb.category_title(entry.category, lang))}</p>",
        f"<h2>{escape(_w(lang, 'symptoms'))}</h2><p>{_inline(words.symptoms, lang)}</p>",
        f"<h2>{escape(_w(lang, 'cause'))}</h2><p>{_inline(words.cause, lang)}</p>",
        f"<h2>{escape(_w(lang, 'steps'))}</h2><ol>{steps}</ol>",
    ]
    if entry.fix:
        out.append(f'<p class="fix">{escape(_w(lang, "fix", id=entry.id))}</p>')
    related = [r for r in (kb.get(i) for i in entry.related) if r is not None]
    if related:
        items = "".join(
            f'<li><a href="{kb_url(lang, r.id)}">{escape(r.w(lang).title)}</a></li>'
            for r in related
        )
        out.append(f"<h2>{escape(_w(lang, 'related'))}</h2><ul>{items}</ul>")
    return "<article>\n" + "\n".join(out) + "\n</article>"


def render_kb_entry(entry_id: str, lang: str) -> str | None:
    """One KB entry, or None when there is no such entry."""
    entry = knowledge_base().get(entry_id)
    if entry is None:
        return None
    return _layout(
        lang, entry.w(lang).title, _entry_body(entry, lang), kb_url(_other(lang), entry_id)
    )


def render_not_found(wanted: str, lang: str, closest: list[str]) -> str:
    """The 404 page: what was asked (escaped) and the closest pages."""
    items = "".join(
        f'<li><a href="{page_url(lang, s)}">{escape(p.title)}</a></li>'
        for s in closest
        if (p := guides.get(s, lang)) is not None
    )
    body = f"<h1>{escape(_w(lang, 'not_found'))}</h1><p><code>{escape(wanted[:120])}</code></p>"
    if items:
        body += f"<p>{escape(_w(lang, 'closest'))}</p><ul>{items}</ul>"
    body += f'<p><a href="{index_url(lang)}">{escape(_w(lang, "index"))}</a></p>'
    return _layout(lang, _w(lang, "not_found"), body, index_url(_other(lang)))


__all__ = [
    "LANGS",
    "css",
    "markdown",
    "render_index",
    "render_kb_entry",
    "render_kb_index",
    "render_not_found",
    "render_page",
    "style_hash",
]
