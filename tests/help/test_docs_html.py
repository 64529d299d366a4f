"""The HTML docs build: `/docs` serves every guide page and KB entry in tr and en, every
internal link answers 200, content is escaped, the headers are strict, the language is
negotiated, and the guide is served with the database unreachable and before start-up ends.
A headless Chromium renders the index (artifacts: test-artifacts/docs-*.png)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chatops.web.boot import attach, make_boot_app, start_web
from chatops.web.docs import make_docs_app
from chatops.web.server import make_web_app
from piyasa.config import load_settings
from piyasa.help import guides, html
from piyasa.help.kb import LANGS, knowledge_base
from piyasa.readiness import Readiness
from piyasa.services import Services
from tests.e2e.chromium import ARTIFACTS, require_chromium, run_chromium


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.hrefs.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def _parse(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


@pytest.fixture
async def client():  # type: ignore[no-untyped-def]
    async with TestClient(TestServer(make_docs_app())) as c:
        yield c


async def test_crawl_from_the_index_every_internal_link_answers_200(client: TestClient) -> None:
    seen: set[str] = set()
    queue = ["/docs", "/docs/tr", "/docs/en"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        resp = await client.get(path)
        assert resp.status == 200, f"{path} answers {resp.status}"
        assert resp.content_type == "text/html"
        for href in _parse(await resp.text()).hrefs:
            target, _ = urldefrag(href)
            parts = urlsplit(target)
            if parts.scheme or parts.netloc:
                continue  # external: not ours to check
            assert target.startswith("/docs"), f"{path} links to {href}, outside /docs"
            queue.append(target)
    kb = knowledge_base()
    for lang in LANGS:  # every page and every entry was reached from the index
        assert {f"/docs/{lang}/{slug}" for slug in guides.ORDER} <= seen
        assert {f"/docs/{lang}/kb/{e}" for e in kb.entries} <= seen
    assert len(seen) >= 2 * (len(guides.ORDER) + len(kb.entries) + 2)


async def test_every_markdown_link_becomes_an_html_route() -> None:
    for (slug, lang), page in guides.pages().items():
        rendered = html.render_page(slug, lang)
        assert rendered is not None
        for kind, target in guides.links(page):
            if kind == "page" or (kind == "docs" and target in guides.ORDER):
                assert f'href="/docs/{lang}/{target}"' in rendered, (slug, lang, target)
            elif kind == "kb":
                assert f'href="/docs/{lang}/kb/{target}"' in rendered, (slug, lang, target)
        assert '.md"' not in rendered and ".md#" not in rendered, (slug, lang)


def test_content_is_escaped_no_raw_html_or_script_links() -> None:
    out = html.markdown(
        '<script>alert(1)</script> <img src=x onerror="alert(2)"> '
        "[click](javascript:alert(3)) `<b>code</b>` [ok](alerts.md)",
        "en",
    )
    assert "<script" not in out and "<img" not in out and 'href="javascript' not in out
    assert "&lt;script&gt;" in out and "&lt;b&gt;code&lt;/b&gt;" in out
    assert '<a href="/docs/en/alerts">ok</a>' in out


async def test_headers_are_strict_and_the_inline_style_matches_the_csp(
    client: TestClient,
) -> None:
    resp = await client.get("/docs/en/alerts")
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    style = re.search(r"<style>(.*?)</style>", await resp.text(), re.S)
    assert style is not None and "@media print" in style.group(1)
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp


async def test_language_from_path_then_query_then_accept_language_then_english(
    client: TestClient,
) -> None:
    async def lang_of(path: str, accept: str | None = None) -> str:
        headers = {"Accept-Language": accept} if accept else {}
        resp = await client.get(path, headers=headers)
        assert resp.status == 200
        found = re.search(r'<html lang="(\w+)">', await resp.text())
        assert found is not None and resp.headers["Content-Language"] == found.group(1)
        return found.group(1)

    assert await lang_of("/docs") == "en"
    assert await lang_of("/docs", "tr-TR,tr;q=0.9,en;q=0.5") == "tr"
    assert await lang_of("/docs/alerts?lang=en", "tr") == "en"
    assert await lang_of("/docs/tr/alerts", "en") == "tr"
    assert await lang_of("/docs/kb/tg-429?lang=tr") == "tr"
    page = await (await client.get("/docs/tr/alerts")).text()
    assert "<h1>Uyarılar</h1>" in page and 'href="/docs/en/alerts"' in page  # the switch


async def test_unknown_page_is_404_with_the_closest_pages_and_echo_is_escaped(
    client: TestClient,
) -> None:
    resp = await client.get("/docs/en/alert")
    assert resp.status == 404
    assert 'href="/docs/en/alerts"' in await resp.text()
    resp = await client.get("/docs/kb/%3Cscript%3Ealert(1)")
    body = await resp.text()
    assert resp.status == 404 and "<script>" not in body and "&lt;script&gt;" in body
    assert (await client.get("/docs/en/kb/tg-429/extra")).status == 404
    assert (await client.post("/docs/en/alerts")).status == 405


async def test_served_with_the_database_unreachable(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "PIYASA_DATA_DIR": str(tmp_path / "data"),
            "PIYASA_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere",
        }
    )
    services = Services.build(settings)
    try:
        async with TestClient(TestServer(make_web_app(services))) as c:
            assert (await c.get("/readyz")).status == 503  # the database is really away
            for path in ("/docs", "/docs/tr/troubleshooting", "/docs/en/kb/db-pg-refused"):
                resp = await c.get(path)
                assert resp.status == 200, path
    finally:
        await services.close()


async def test_served_by_the_boot_server_before_start_up_finishes() -> None:
    readiness = Readiness()
    readiness.expect("database")  # never comes up in this test
    boot = make_boot_app(readiness, "tr")
    async with TestClient(TestServer(boot)) as c:
        attach(boot, make_docs_app())  # what `piyasa up` does right after binding
        assert (await c.get("/readyz")).status == 503
        assert (await c.get("/api/health")).status == 503
        resp = await c.get("/docs/en/getting-started")
        assert resp.status == 200 and "Getting started" in await resp.text()


@pytest.mark.e2e
async def test_chromium_renders_the_index_with_visible_text() -> None:
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "docs-index.png"
    shot.unlink(missing_ok=True)
    runner: web.AppRunner | None = None
    try:
        runner, port = await start_web(make_docs_app(), "127.0.0.1", 0)
        url = f"http://127.0.0.1:{port}"
        dom, _ = await asyncio.gather(
            run_chromium("--dump-dom", f"{url}/docs/en"),
            run_chromium(f"--screenshot={shot}", "--window-size=1024,1200", f"{url}/docs/tr"),
        )
    finally:
        if runner is not None:
            await runner.cleanup()
    text = " ".join(" ".join(_parse(dom).text).split())
    for title in ("Getting started (5 minutes)", "Bots and personas", "HTTP API", "FAQ"):
        assert title in text, title
    assert "Knowledge base" in text
    assert shot.stat().st_size > 5_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chat_text_turns_tables_into_lines() -> None:
    """The same pages in chat (/docs): no Markdown table syntax reaches a message."""
    page = guides.get("settings", "en")
    assert page is not None and "| `scale_factor` |" in page.body
    text = guides.plain(page.body)
    assert "• `scale_factor` — 0 – 10 — multiplies" in text
    for (slug, lang), p in guides.pages().items():
        for line in guides.plain(p.body).splitlines():
            assert not line.lstrip().startswith("|"), (slug, lang, line)
            assert not guides.TABLE_RULE.match(line) or not line.strip(), (slug, lang, line)
