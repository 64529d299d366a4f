"""``/help WORDS``: the one help search (:mod:`chatops.help_search`, the same index as
``/kb`` and ``/docs search``) over command help, the knowledge base and the guide, ranked.

Commands are listed only when the reader may run them; knowledge-base entries and guide
pages open with their own buttons (``kb.show``, ``docs.show``). Nothing found says so and
offers topics: the knowledge base's categories and the guide's pages.
"""

from __future__ import annotations

from chatops import help_search
from chatops.context import Context
from chatops.views import Alert, Button, Text, View

MAX_COMMANDS = 5
MAX_KB = 5
MAX_DOCS = 3
SHOWN_QUERY = 60  # characters of the query repeated back


def _shown(query: str) -> str:
    return query if len(query) <= SHOWN_QUERY else query[: SHOWN_QUERY - 1] + "…"


def topics_view(ctx: Context, alert: Alert) -> View:
    """Nothing found: say so, and offer the KB categories and the guide's pages."""
    from chatops.commands.kb import _category_buttons

    view = View(title=ctx.t("help.search.title", q=_shown(ctx.args.get("query", ""))))
    view.blocks += [alert, Text(ctx.t("help.search.topics"), style="bold")]
    view.buttons.extend(_category_buttons(ctx))
    view.row(Button(ctx.t("docs.btn.home"), "docs.home"))
    return view


def results_view(ctx: Context, query: str) -> View:
    """Ranked results for ``query`` in the reader's language (the other one as fallback),
    grouped as commands, knowledge-base entries and guide pages, best first in each."""
    prefix = "/piyasa " if ctx.surface == "slack" else "/"
    hits = help_search.index().search(query, ctx.lang, limit=40)
    visible = {c.id: c for c in ctx.registry.visible(ctx.level)}
    cmds = [visible[h.doc.ref] for h in hits if h.doc.kind == "cmd" and h.doc.ref in visible]
    kb = [h for h in hits if h.doc.kind == "kb"][:MAX_KB]
    seen: set[str] = set()
    docs = []
    for h in hits:
        slug = "faq" if h.doc.kind == "faq" else h.doc.ref
        if h.doc.kind in ("doc", "faq") and slug not in seen:
            seen.add(slug)
            docs.append((slug, h))
    cmds, docs = list(dict.fromkeys(cmds))[:MAX_COMMANDS], docs[:MAX_DOCS]
    ctx.audit_params["found"] = len(cmds) + len(kb) + len(docs)
    if not (cmds or kb or docs):
        return topics_view(ctx, Alert("warning", ctx.t("help.search.none", q=_shown(query))))
    view = View(title=ctx.t("help.search.title", q=_shown(query)))
    if cmds:
        lines = [f"{prefix}{c.usage()} — {ctx.t(c.help_key)}" for c in cmds]
        view.blocks += [Text(ctx.t("help.search.commands"), style="bold"), Text("\n".join(lines))]
    if kb:
        view.blocks.append(Text(ctx.t("help.search.kb"), style="bold"))
        view.blocks.append(Text("\n".join(f"📘 {h.doc.title}" for h in kb)))
        for h in kb:
            view.row(Button(f"📘 {h.doc.title}", "kb.show", {"id": h.doc.ref}))
    if docs:
        from piyasa.help import guides

        view.blocks.append(Text(ctx.t("help.search.docs"), style="bold"))
        titles = []
        for slug, h in docs:
            page = guides.get(slug, ctx.lang)
            titles.append(page.title if page is not None else h.doc.title)
            view.row(Button(f"📄 {titles[-1]}", "docs.show", {"p": slug}))
        view.blocks.append(Text("\n".join(f"📄 {t}" for t in titles)))
    return view
