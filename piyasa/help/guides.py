"""The user guide read in chat (`/docs`): Markdown pages in tr and en.

``piyasa/help/content/guides/<lang>/<slug>.md``; a page's title is its first ``# `` line.
Links between pages are ordinary Markdown links to ``<slug>.md``; a page may also name
```/kb ENTRY``` and ```/docs SLUG``` in backticks. :func:`links` lists them all, and
``tests/help/test_docs_links.py`` proves each one resolves (the docs build). The FAQ is
the page ``faq``: one ``## `` heading per question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from piyasa.help.kb import LANGS
from piyasa.help.search import Doc

GUIDES = Path(__file__).parent / "content" / "guides"
ORDER = (
    "getting-started",
    "adding-a-bot",
    "bots-and-personas",
    "chats-and-topics",
    "settings",
    "roles",
    "health",
    "alerts",
    "analytics",
    "backups",
    "troubleshooting",
    "deployment",
    "http-api",
    "faq",
)
MD_LINK = re.compile(r"\[([^\]]+)\]\(([a-z0-9-]+)\.md\)")
KB_REF = re.compile(r"`/kb ([a-z0-9-]+)`")
DOCS_REF = re.compile(r"`/docs ([a-z0-9-]+)`")


@dataclass(frozen=True)
class Page:
    slug: str
    lang: str
    title: str
    body: str  # the Markdown after the title line

    def sections(self) -> list[tuple[str, str]]:
        """``(heading, text)`` per ``## `` section (the FAQ's questions)."""
        parts = re.split(r"^## (.+)$", self.body, flags=re.M)
        return [(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]


def _read(path: Path, lang: str) -> Page:
    text = path.read_text(encoding="utf-8")
    head, _, body = text.partition("\n")
    if not head.startswith("# "):
        raise ValueError(f"{path}: the first line must be '# Title'")
    return Page(path.stem, lang, head[2:].strip(), body.strip())


@cache
def pages() -> dict[tuple[str, str], Page]:
    """(slug, lang) -> page, for every page in every language, in :data:`ORDER`."""
    out: dict[tuple[str, str], Page] = {}
    for slug in ORDER:
        for lang in LANGS:
            out[(slug, lang)] = _read(GUIDES / lang / f"{slug}.md", lang)
    return out


def get(slug: str, lang: str) -> Page | None:
    return pages().get((slug, lang))


TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _table_row(line: str) -> str:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return "• " + " — ".join(c for c in cells if c)


def plain(body: str) -> str:
    """Chat text: Markdown links become their words (the pages are buttons instead), and
    table rows become "• a — b — c" lines (a chat has no tables)."""
    lines = []
    for line in MD_LINK.sub(r"\1", body).split("\n"):
        if TABLE_RULE.match(line):
            continue
        lines.append(_table_row(line) if line.lstrip().startswith("|") else line)
    return "\n".join(lines)


def links(page: Page) -> list[tuple[str, str]]:
    """``(kind, target)`` for every link: ``("page", slug)``, ``("kb", id)``,
    ``("docs", slug)``."""
    out = [("page", m.group(2)) for m in MD_LINK.finditer(page.body)]
    out += [("kb", m.group(1)) for m in KB_REF.finditer(page.body)]
    out += [("docs", m.group(1)) for m in DOCS_REF.finditer(page.body)]
    return out


def documents() -> list[Doc]:
    """Search documents: one per page and language, one per FAQ question."""
    docs = []
    for page in pages().values():
        docs.append(Doc("doc", page.slug, page.lang, page.title, plain(page.body)))
        if page.slug == "faq":
            for i, (q, a) in enumerate(page.sections()):
                docs.append(Doc("faq", f"faq#{i}", page.lang, q, plain(a)))
    return docs
