"""`/docs`: the user guide and knowledge base as static HTML, public, no database.

Routes (GET and HEAD):

- ``/docs`` and ``/docs/<lang>``: the contents;
- ``/docs/<slug>`` and ``/docs/<lang>/<slug>``: a guide page;
- ``/docs/kb``, ``/docs/<lang>/kb``: every KB entry; ``/docs/[<lang>/]kb/<id>``: one.

Without a language in the path, ``?lang=tr|en`` wins, then Accept-Language, then English.
An unknown page is a 404 that lists the closest pages. The pages are rendered by
:mod:`piyasa.help.html` once per (path, language) and kept: the content only changes with
a new version. No service is read, so ``piyasa up`` attaches this app to the boot server
before the database is reached (:func:`make_docs_app`), and the guide answers while the
database, Redis and chat are down. Public help: no login, no secrets in it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from aiohttp import web

from chatops.web.status_i18n import negotiate

LANGS = ("tr", "en")
DEFAULT_LANG = "en"
MAX_PATH = 200


def security_headers() -> dict[str, str]:
    """Strict headers: nothing but the page's own inline stylesheet (by hash) may load."""
    from piyasa.help.html import style_hash

    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src {style_hash()}; img-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "public, max-age=300",
    }


def _resolve(parts: list[str]) -> tuple[str | None, Callable[[str], str | None]] | None:
    """Path parts after /docs → (language from the path or None, renderer by language)."""
    from piyasa.help import guides, html

    lang: str | None = None
    if parts and parts[0] in LANGS:
        lang, parts = parts[0], parts[1:]
    if not parts:
        return lang, html.render_index
    if parts[0] == "kb":
        if len(parts) == 1:
            return lang, html.render_kb_index
        if len(parts) == 2:
            entry_id = parts[1]
            return lang, lambda lg: html.render_kb_entry(entry_id, lg)
        return None
    if len(parts) == 1 and parts[0] in guides.ORDER:
        slug = parts[0]
        return lang, lambda lg: html.render_page(slug, lg)
    return None


class DocsPages:
    """The handler, with its cache of rendered pages (bounded: the content is fixed)."""

    def __init__(self, default_lang: str = DEFAULT_LANG) -> None:
        self.default_lang = default_lang if default_lang in LANGS else DEFAULT_LANG
        self._cache: dict[tuple[str, str], str] = {}

    def _lang(self, request: web.Request, from_path: str | None) -> str:
        if from_path is not None:
            return from_path
        return negotiate(
            request.query.get("lang"), request.headers.get("Accept-Language"), self.default_lang
        )

    def _respond(self, text: str, lang: str, status: int = 200) -> web.Response:
        headers = security_headers()
        headers.update({"Content-Language": lang, "Vary": "Accept-Language"})
        if status != 200:
            headers["Cache-Control"] = "no-store"
        return web.Response(
            text=text, status=status, content_type="text/html", charset="utf-8", headers=headers
        )

    async def handle(self, request: web.Request) -> web.Response:
        """Serve one page; a 404 names the closest pages."""
        tail = request.match_info.get("tail", "")
        parts = [p for p in tail.split("/") if p] if len(tail) <= MAX_PATH else ["?"]
        found = _resolve(parts)
        if found is not None:
            path_lang, render = found
            lang = self._lang(request, path_lang)
            key = ("/".join(parts[1:] if path_lang else parts), lang)
            text = self._cache.get(key)
            if text is None:
                text = render(lang)
                if text is not None:
                    self._cache[key] = text
            if text is not None:
                return self._respond(text, lang)
        return self._not_found(request, parts)

    def _not_found(self, request: web.Request, parts: list[str]) -> web.Response:
        from piyasa.help import guides, html

        path_lang = parts[0] if parts and parts[0] in LANGS else None
        lang = self._lang(request, path_lang)
        wanted = parts[-1] if parts else ""
        closest = difflib.get_close_matches(wanted.lower(), guides.ORDER, n=3, cutoff=0.5)
        return self._respond(html.render_not_found(wanted, lang, closest), lang, status=404)


def setup_docs_routes(app: web.Application, default_lang: str = DEFAULT_LANG) -> None:
    """Add ``/docs`` and ``/docs/{tail}`` (GET, HEAD) to ``app``."""
    pages = DocsPages(default_lang)
    app.router.add_get("/docs", pages.handle)
    app.router.add_get("/docs/{tail:.*}", pages.handle)


def make_docs_app(default_lang: str = DEFAULT_LANG) -> web.Application:
    """A small app with only the docs routes: `piyasa up` attaches it to the boot server at
    once, so the guide is served before (and without) the database."""
    app = web.Application()
    setup_docs_routes(app, default_lang)
    return app
