"""`/docs [page | words]` (viewer): the user guide in chat, with its FAQ and a tutorial.

No argument: the pages, the FAQ and the tutorial as buttons. A page's slug
(``/docs alerts``): that page, paged at :data:`PAGE_CHARS`, its links to other pages as
buttons. Anything else: the same search as ``/kb`` (:mod:`chatops.help_search`) over the
pages, the FAQ's questions and the KB; nothing found says so and lists the pages; a word
close to a slug ("/docs alert") names the closest pages. ``/docs tutorial [ID]``: the
tutorials (:mod:`chatops.commands.tutorials`), whose steps check the real state.
"""

from __future__ import annotations

import difflib

from chatops import help_search
from chatops.commands.registry import Arg, Param, command
from chatops.context import Context
from chatops.views import Alert, Button, Text, View
from piyasa.help import guides

PAGE_CHARS = 3000
SLUGS = guides.ORDER
MAX_HITS = 8


def home_view(ctx: Context, alert: Alert | None = None) -> View:
    view = View(title=ctx.t("docs.title"))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(Text(ctx.t("docs.home")))
    for slug in SLUGS:
        page = guides.get(slug, ctx.lang)
        if page is not None:
            view.row(Button(f"📄 {page.title}", "docs.show", {"p": slug}))
    view.row(Button(ctx.t("docs.btn.tutorial"), "docs.tutorials"))
    return view


def _chunks(text: str) -> list[str]:
    out, cur = [], ""
    for para in text.split("\n\n"):
        if cur and len(cur) + len(para) + 2 > PAGE_CHARS:
            out.append(cur)
            cur = ""
        cur = f"{cur}\n\n{para}" if cur else para
    return [*out, cur] if cur else out or [""]


def page_view(ctx: Context, slug: str, part: int = 0) -> View:
    page = guides.get(slug, ctx.lang)
    if page is None:
        return home_view(ctx, Alert("warning", ctx.t("docs.unknown", q=slug)))
    chunks = _chunks(guides.plain(page.body))
    part = max(0, min(part, len(chunks) - 1))
    title = page.title + (f" ({part + 1}/{len(chunks)})" if len(chunks) > 1 else "")
    view = View(title=f"📄 {title}", blocks=[Text(chunks[part])])
    nav = []
    if part > 0:
        nav.append(Button("⬅", "docs.show", {"p": slug, "n": str(part - 1)}))
    if part + 1 < len(chunks):
        nav.append(Button("➡", "docs.show", {"p": slug, "n": str(part + 1)}))
    if nav:
        view.row(*nav)
    seen = set()
    for kind, target in guides.links(page):
        if kind == "page" and target not in seen and target != slug:
            seen.add(target)
            other = guides.get(target, ctx.lang)
            if other is not None:
                view.row(Button(f"↪ {other.title}", "docs.show", {"p": target}))
    view.row(Button(ctx.t("docs.btn.home"), "docs.home"))
    return view


def results_view(ctx: Context, query: str) -> View:
    hits = help_search.index().search(query, ctx.lang, limit=MAX_HITS * 3)
    shown = [h for h in hits if h.doc.kind in ("doc", "faq", "kb")][:MAX_HITS]
    close = difflib.get_close_matches(query.lower(), SLUGS, n=3, cutoff=0.6)
    if not shown and not close:
        return home_view(ctx, Alert("warning", ctx.t("docs.none", q=query[:60])))
    view = View(title=ctx.t("docs.results", q=query[:60]))
    if close:
        view.blocks.append(Text(ctx.t("docs.closest")))
        for slug in close:
            view.row(Button(f"📄 {guides.get(slug, ctx.lang).title}", "docs.show", {"p": slug}))  # type: ignore[union-attr]
    for h in shown:
        if h.doc.kind == "kb":
            view.row(Button(f"📘 {h.doc.title}", "kb.show", {"id": h.doc.ref}))
        elif h.doc.kind == "faq":
            view.row(Button(f"❔ {h.doc.title}", "docs.show", {"p": "faq"}))
        else:
            view.row(Button(f"📄 {h.doc.title}", "docs.show", {"p": h.doc.ref}))
    view.row(Button(ctx.t("docs.btn.home"), "docs.home"))
    return view


@command("docs", role="viewer", order=38, args=(Arg("query", rest=True),), needs=())
async def docs(ctx: Context) -> View:
    """No argument: the pages; a slug: that page; "tutorial [ID]": the tutorials; else search."""
    query = " ".join((ctx.args.get("query") or "").split())
    if not query:
        return home_view(ctx)
    slug = query.lower()
    if slug in SLUGS:
        return page_view(ctx, slug)
    if slug == "tutorial" or slug.startswith("tutorial "):
        from chatops.commands.tutorials import list_view, open_tutorial

        wanted = slug[len("tutorial") :].strip()
        return await open_tutorial(ctx, wanted) if wanted else await list_view(ctx)
    if slug.startswith("search "):
        query = query[7:]
    return results_view(ctx, query)


@docs.action("home", needs=())
async def docs_home(ctx: Context) -> View:
    return home_view(ctx)


PARTS = tuple(str(i) for i in range(20))


@docs.action("show", params=(Param("p", SLUGS, required=True), Param("n", PARTS)), needs=())
async def docs_show(ctx: Context) -> View:
    return page_view(ctx, str(ctx.params["p"]), int(ctx.params.get("n") or 0))
