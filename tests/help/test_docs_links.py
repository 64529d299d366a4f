"""The docs build: every guide page exists in tr and en with a title, every link between
pages, every `/kb ENTRY`, `/docs PAGE` and `/command` a page names resolves, and every
relative link in docs/*.md leads to a file the repository holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatops.commands import load_all
from piyasa.help import guides
from piyasa.help.kb import LANGS, knowledge_base

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"(?<![\w/.<-])/([a-z]+)\b(?!/)")  # `/api/health` is a URL path
REPO_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
COMMANDS = set(load_all().commands)
NOT_COMMANDS = {"newbot", "models", "invite"}  # BotFather's, a URL path, Slack's
HTTP_ROUTES = {"healthz", "readyz", "metrics"}  # the web server's, in the HTTP API page


@pytest.mark.parametrize("slug", guides.ORDER)
def test_every_page_in_both_languages_and_its_links_resolve(slug: str) -> None:
    kb = knowledge_base()
    for lang in LANGS:
        page = guides.get(slug, lang)
        assert page is not None and page.title and page.body, (slug, lang)
        for kind, target in guides.links(page):
            if kind in ("page", "docs"):
                assert target in guides.ORDER or target == "tutorial", (slug, lang, target)
            else:
                assert kb.get(target) is not None, (slug, lang, target)
        named = set(COMMAND.findall(page.body)) - NOT_COMMANDS - HTTP_ROUTES - {"piyasa"}
        assert named <= COMMANDS, (slug, lang, named - COMMANDS)


def test_the_faq_has_questions_in_both_languages() -> None:
    en, tr = guides.get("faq", "en"), guides.get("faq", "tr")
    assert en and tr and len(en.sections()) == len(tr.sections()) >= 30


def test_a_broken_link_is_caught() -> None:
    page = guides.Page("x", "en", "X", "See [Nowhere](nowhere.md) and `/kb no-such-entry`.")
    assert ("page", "nowhere") in guides.links(page) and ("kb", "no-such-entry") in guides.links(
        page
    )


@pytest.mark.parametrize("md", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_docs_md_relative_links_resolve(md: Path) -> None:
    for target in REPO_LINK.findall(md.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (md.parent / target).exists(), f"{md.name} links to {target}, which does not exist"


def test_docs_guide_md_lists_every_page_in_both_languages() -> None:
    """docs/guide.md, the guide's index in the repository, names every page of
    guides.ORDER in English and Turkish (its links are checked by the test above)."""
    index = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    for slug in guides.ORDER:
        for lang in LANGS:
            assert f"guides/{lang}/{slug}.md)" in index, (slug, lang)
