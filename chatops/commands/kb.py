"""`/kb [query]`: the knowledge base of common errors (viewer), on every surface.

No query: the categories to browse. A query (words, or a pasted error text): the best
entries as buttons, and the commands whose help matches (only those the reader may run).
An entry shows symptoms, cause and steps, its related entries, and [Apply fix] where the
entry names a fix: that button *is* the existing action (a health quick action, or a
settings fix that previews current → recommended and checks on Apply that the setting is
still what was seen: :mod:`chatops.commands.diagnose_fix`), so the fix runs through that
action's handler, confirmation, audit and role rule; it is only shown to roles that rule
lets through. Content and search:
:mod:`piyasa.help.kb`, :mod:`piyasa.help.search` (in-process: /kb keeps answering while
the database is down, except for the one fix that reads a setting's current value).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from chatops import help_search, i18n
from chatops.commands.registry import REGISTRY, Arg, Param, command
from chatops.context import Context
from chatops.views import Alert, Button, Text, View
from piyasa.db.availability import db_down
from piyasa.fleetadmin import settings as fleet_settings
from piyasa.help.kb import Entry, knowledge_base, screens

log = logging.getLogger(__name__)
KB = knowledge_base()
CATEGORIES = tuple(KB.categories)
ENTRY_IDS = tuple(KB.entries)
MAX_RESULTS = 8
MAX_COMMANDS = 5
MAX_RELATED = 4
MAX_GUIDES = 2
SHOWN_QUERY = 60  # characters of the query repeated back in a title


FIX_ACTION = "diagnose.fix"
"""The action of a settings fix (:mod:`chatops.commands.diagnose_fix`): its button carries
what was seen (``key``, ``was``, ``ver``) and the recommended value ``v``."""
FIX_REASON = "fix: "  # the reason of a settings change made by a fix: "fix: ENTRY_ID"
FIX_KEYS = ("scale_factor",)  # the settings an automatic fix changes (:func:`_lower_scale`)


async def _lower_scale(ctx: Context) -> Button | None:
    """Halve ``scale_factor``: the value and version read now (as the report or entry is
    shown) travel in the button, so a press after a change refuses instead of guessing."""
    if db_down(ctx.services):  # known down: do not wait on it, /kb answers without the fix
        return None
    try:
        seen = await fleet_settings.get(ctx.services, "scale_factor")
    except Exception:  # the database is down: the fix cannot show current → new
        log.info("kb: scale_factor unreadable; no Apply fix button", exc_info=True)
        return None
    target = round(float(seen.value) / 2, 2)
    params = {"key": "scale_factor", "was": seen.value, "v": target, "ver": seen.version}
    return Button(ctx.t("kb.btn.fix"), FIX_ACTION, params)


def _fixed(action: str, **params: object) -> Callable[[Context], Awaitable[Button | None]]:
    async def make(ctx: Context) -> Button | None:
        return Button(ctx.t("kb.btn.fix"), action, dict(params))

    return make


FIX_BUTTONS: dict[str, Callable[[Context], Awaitable[Button | None]]] = {
    "lower_scale": _lower_scale,  # scale_factor seen → half, confirmed, checked, undoable
    "reset_breakers": _fixed("health.reset", bot="all"),
    "restart_workers": _fixed("health.restart"),
    "clear_cache": _fixed("health.clear_cache"),
    "run_checks": _fixed("health.run_checks"),
    "change_llm_model": _fixed("settings.edit", key="llm_model"),
    "change_llm_base_url": _fixed("settings.edit", key="llm_base_url"),
}
"""Every fix id of :data:`piyasa.help.kb.FIXES` as the button of the existing action."""


async def fix_button(ctx: Context, entry: Entry) -> Button | None:
    """[Apply fix] for ``entry`` when it has one and the reader's role may run it."""
    if entry.fix is None:
        return None
    button = await FIX_BUTTONS[entry.fix](ctx)
    spec = REGISTRY.get(button.action) if button is not None else None
    if spec is None or ctx.level < spec.level:
        return None
    return button


def _category_buttons(ctx: Context) -> list[list[Button]]:
    labels = [
        Button(f"{KB.category_title(c, ctx.lang)} ({len(KB.in_category(c))})", "kb.cat", {"c": c})
        for c in CATEGORIES
    ]
    return [labels[i : i + 2] for i in range(0, len(labels), 2)]


def home_view(ctx: Context, alert: Alert | None = None) -> View:
    view = View(title=ctx.t("kb.title"))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(Text(ctx.t("kb.home", n=len(KB.entries), c=len(CATEGORIES))))
    view.buttons.extend(_category_buttons(ctx))
    view.row(help_button(ctx, "kb"))
    return view


# -- "?" targets: the help of a command's screens, with related topics ------------------------


def help_button(ctx: Context, command_name: str) -> Button:
    """The "?" button of ``command_name``'s screens (any View may add it)."""
    return Button(ctx.t("kb.btn.about"), "kb.about", {"cmd": command_name})


def related_entries(command_name: str, lang: str) -> list[Entry]:
    """The entries of ``command_name``'s "?" target: declared in ``screens.yaml``, else
    what its help text finds in the search."""
    declared = screens().get(command_name)
    if declared:
        return [KB.entries[i] for i in declared[:MAX_RELATED]]
    cmd = REGISTRY.commands.get(command_name)
    if cmd is None:
        return []
    hits = help_search.index().search(i18n.t(lang, cmd.help_key), lang, limit=MAX_RELATED * 3)
    return [KB.entries[h.doc.ref] for h in hits if h.doc.kind == "kb"][:MAX_RELATED]


def related_guides(command_name: str, lang: str) -> list[tuple[str, str]]:
    """(slug, title) of the guide pages of ``command_name``'s "?" target: the pages that
    name ``/command``, else what its help text finds among the pages."""
    from piyasa.help import guides

    named = re.compile(rf"/{re.escape(command_name)}\b")
    found = [
        (p.slug, p.title)
        for (slug, page_lang), p in guides.pages().items()
        if page_lang == lang and named.search(p.body)
    ]
    if not found:
        cmd = REGISTRY.commands.get(command_name)
        text = i18n.t(lang, cmd.help_key) if cmd is not None else command_name
        for h in help_search.index().search(text, lang, limit=MAX_RELATED * 3):
            page = guides.get(h.doc.ref, lang) if h.doc.kind == "doc" else None
            if page is not None:
                found.append((page.slug, page.title))
    return found[:MAX_GUIDES]


def about_view(ctx: Context, command_name: str) -> View:
    """Help for ``command_name``'s screens: what it does, how to type it, related entries.
    A command the reader may not run gets the same answer as one that does not exist
    (help never shows what a role may not run)."""
    cmd = REGISTRY.commands.get(command_name)
    if cmd is None or ctx.level < cmd.level:
        return home_view(ctx, Alert("warning", ctx.t("kb.about.none")))
    prefix = "/piyasa " if ctx.surface == "slack" else "/"
    view = View(
        title=ctx.t("kb.about.title", cmd=f"{prefix}{cmd.id}"),
        blocks=[Text(ctx.t(cmd.help_key)), Text(f"{prefix}{cmd.usage()}", style="code")],
    )
    related = related_entries(cmd.id, ctx.lang)
    if related:
        view.blocks.append(Text(ctx.t("kb.about.related"), style="bold"))
        for e in related:
            view.row(Button(f"↪ {e.w(ctx.lang).title}", "kb.show", {"id": e.id}))
    pages = related_guides(cmd.id, ctx.lang)
    if pages:
        view.blocks.append(Text(ctx.t("kb.about.guides"), style="bold"))
        for slug, title in pages:
            view.row(Button(f"📄 {title}", "docs.show", {"p": slug}))
    view.row(Button(ctx.t("kb.btn.categories"), "kb.home"))
    return view


def _commands_line(ctx: Context, query: str) -> str:
    names = [
        hit.doc.ref
        for hit in help_search.index().search(query, ctx.lang, limit=20)
        if hit.doc.kind == "cmd"
    ]
    visible = {c.id for c in REGISTRY.visible(ctx.level)}
    allowed = [n for n in names if n in visible][:MAX_COMMANDS]
    return ", ".join(f"/{n}" for n in allowed)


def results_view(ctx: Context, query: str) -> View:
    shown = query if len(query) <= SHOWN_QUERY else query[: SHOWN_QUERY - 1] + "…"
    hits = [
        h
        for h in help_search.index().search(query, ctx.lang, limit=MAX_RESULTS * 2)
        if h.doc.kind == "kb"
    ][:MAX_RESULTS]
    ctx.audit_params["found"] = len(hits)
    commands = _commands_line(ctx, query)
    if not hits:
        view = home_view(ctx, Alert("warning", ctx.t("kb.none", q=shown)))
        if commands:
            view.blocks.append(Text(ctx.t("kb.commands", names=commands)))
        return view
    view = View(title=ctx.t("kb.results", q=shown))
    lines = [f"{i}. {KB.entries[h.doc.ref].w(ctx.lang).title}" for i, h in enumerate(hits, 1)]
    view.blocks.append(Text("\n".join(lines)))
    if commands:
        view.blocks.append(Text(ctx.t("kb.commands", names=commands)))
    for i, h in enumerate(hits, 1):
        title = KB.entries[h.doc.ref].w(ctx.lang).title
        view.row(Button(f"{i}. {title}", "kb.show", {"id": h.doc.ref}))
    view.row(Button(ctx.t("kb.btn.categories"), "kb.home"))
    return view


def category_view(ctx: Context, category: str) -> View:
    entries = KB.in_category(category)
    view = View(title=ctx.t("kb.category", name=KB.category_title(category, ctx.lang)))
    view.blocks.append(Text(ctx.t("kb.category.pick", n=len(entries))))
    for e in entries:
        view.row(Button(e.w(ctx.lang).title, "kb.show", {"id": e.id}))
    view.row(Button(ctx.t("kb.btn.categories"), "kb.home"))
    return view


def entry_text(ctx: Context, entry: Entry) -> View:
    """An entry's words in the reader's language — title, symptoms, cause, numbered
    steps — and nothing else: no buttons, no id (what /help learn shows below viewer)."""
    w = entry.w(ctx.lang)
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(w.steps, 1))
    return View(
        title=f"📘 {w.title}",
        blocks=[
            Text(ctx.t("kb.f.symptoms"), style="bold"),
            Text(w.symptoms),
            Text(ctx.t("kb.f.cause"), style="bold"),
            Text(w.cause),
            Text(ctx.t("kb.f.steps"), style="bold"),
            Text(steps),
        ],
    )


async def entry_view(ctx: Context, entry: Entry) -> View:
    ctx.target = entry.id
    view = entry_text(ctx, entry)
    view.blocks.append(Text(ctx.t("kb.f.id", id=entry.id), style="italic"))
    fix = await fix_button(ctx, entry)
    if fix is not None:
        view.row(fix)
    elif entry.fix is None:
        view.blocks.append(Text(ctx.t("kb.manual"), style="italic"))
    related = [KB.entries[r] for r in entry.related[:MAX_RELATED]]
    for r in related:
        view.row(Button(f"↪ {r.w(ctx.lang).title}", "kb.show", {"id": r.id}))
    view.row(
        Button(f"⬅ {KB.category_title(entry.category, ctx.lang)}", "kb.cat", {"c": entry.category}),
        Button(ctx.t("kb.btn.categories"), "kb.home"),
    )
    return view


@command("kb", role="viewer", order=36, args=(Arg("query", rest=True),), needs=())
async def kb(ctx: Context) -> View:
    """No query: the categories; a query: the best entries (or "nothing found" and the
    categories); an entry id typed exactly opens that entry."""
    query = " ".join((ctx.args.get("query") or "").split())
    if not query:
        return home_view(ctx)
    entry = KB.get(query.lower())
    if entry is not None:
        return await entry_view(ctx, entry)
    return results_view(ctx, query)


@kb.action("home", needs=())
async def kb_home(ctx: Context) -> View:
    return home_view(ctx)


@kb.action("cat", params=(Param("c", CATEGORIES, required=True),), needs=())
async def kb_cat(ctx: Context) -> View:
    return category_view(ctx, str(ctx.params["c"]))


@kb.action("show", params=(Param("id", ENTRY_IDS, required=True),), needs=())
async def kb_show(ctx: Context) -> View:
    return await entry_view(ctx, KB.entries[str(ctx.params["id"])])


@kb.action("about", needs=())
async def kb_about(ctx: Context) -> View:
    """The "?" of a screen (:func:`help_button`); the command is checked by the handler,
    not a Param rule, because commands declared after this module count too."""
    return about_view(ctx, str(ctx.params.get("cmd", "")))
