"""``help.learn``: the 📘 Learn more button of every refusal and error
(:mod:`chatops.context_help`). Public, so an unlinked or locked reader learns why too;
it opens only the entries refusals and errors point at (a declared Param rule), and a
reader below viewer gets the entry's text without the knowledge base's buttons."""

from __future__ import annotations

from chatops import context_help
from chatops.commands.core import help_
from chatops.commands.registry import Param
from chatops.context import Context
from chatops.views import View
from piyasa.help.kb import knowledge_base

KB_LEVEL = 1  # viewer: /kb and its buttons


@help_.action("learn", params=(Param("id", context_help.learn_entries(), required=True),), needs=())
async def help_learn(ctx: Context) -> View:
    """The KB entry behind a refusal or error, in a new message (the refusal stays)."""
    entry = knowledge_base().entries[str(ctx.params["id"])]
    ctx.target = entry.id
    from chatops.commands.kb import entry_text, entry_view

    view = await entry_view(ctx, entry) if ctx.level >= KB_LEVEL else entry_text(ctx, entry)
    view.edit = False
    return view
