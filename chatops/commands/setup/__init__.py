"""/setup: the conversational setup wizard (Telegram, private chat with the admin bot).

Steps: admin account + MFA -> LLM -> fleet bots and chats -> database -> advanced ->
admin chat -> summary with [Start system]. Every answer is staged in the wizard's state
(secrets sealed at once, the messages carrying them deleted) and applied together by
[Start system] (``piyasa.admin.setup.wizard.apply``), so Cancel really changes nothing —
except the admin chat: the bot is already in the group the admin added it to, so Yes
makes it the admin chat at once (see ``adminchat``). The state is also kept in the
database, so after a restart `/setup` resumes at the same step.

Who may run it: admins — and, by the declared bootstrap rule ``SETUP_CODE``, anyone
while a setup code waits: ``/setup CODE`` (the one-time code `piyasa setup` printed) links
the sender to that admin, after which the pipeline checks the admin role again. The
pipeline enforces both, /help lists /setup to whom they open it, and every wizard action
requires the admin role.
Slack cannot delete what a user typed, so there `/piyasa setup` shows the status and
points to the Telegram wizard.

Modules: ``common`` (notices, problem sentences, answer buttons), ``account`` (steps 1-2),
``fleet`` (step 3), ``storage`` (steps 4-5), ``adminchat`` (step 6 and the private
question), ``command`` (the command, summary, Dialog).
"""

from __future__ import annotations

from chatops.commands.setup.account import (
    render_admin,
    render_llm,
)
from chatops.commands.setup.command import (
    WIZ,
    finish,
    reset,
    setup,
    slack_pointer,
    summary_items,
)
from chatops.commands.setup.common import flash
from chatops.commands.setup.fleet import CHAT_ID_RE, render_fleet
from chatops.commands.setup.storage import render_adv, render_db

__all__ = [
    "CHAT_ID_RE",
    "WIZ",
    "finish",
    "flash",
    "render_admin",
    "render_adv",
    "render_db",
    "render_fleet",
    "render_llm",
    "reset",
    "setup",
    "slack_pointer",
    "summary_items",
]
