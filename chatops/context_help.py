"""Contextual help, added centrally to what the pipeline shows on every surface.

* **❓ Help** on every screen a command or button produces (:func:`decorate`, called by
  :func:`chatops.pipeline.execute`): it opens ``kb.about`` for that screen's command —
  help text, usage, related knowledge-base entries and guide pages. Only for readers who
  may run both the command and ``kb.about`` (help never offers what a role may not run).
  Not on: a dialog waiting for input (``View.ask``), a screen that opts out
  (``View.context_help = False``), the help screens themselves (:data:`NO_HELP`), a
  screen already carrying it, a screen whose keyboard is full (Telegram: 100 buttons),
  and error screens, which get **📘 Learn more** instead.
* **📘 Learn more** on every refusal and error (:func:`add_learn_more`): the catalog key
  of the message (given by :func:`chatops.pipeline.refusal`, else recognised from an
  error/warning text) maps to the KB entry that explains it (:data:`TARGETS`). The button
  runs ``help.learn``, public, so an unlinked or locked reader can read why too.

Pushed notices (alerts, announcements) never pass :func:`decorate`: they are sent by
their own senders, already full of buttons. Telegram's refused *presses* stay a toast
(answerCallbackQuery carries no button), so the pressed message is left untouched.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from functools import cache
from typing import TYPE_CHECKING

from chatops import i18n
from chatops.views import Alert, Button, View

if TYPE_CHECKING:
    from chatops.context import Context

HELP_ACTION = "kb.about"
LEARN_ACTION = "help.learn"
MAX_BUTTONS = 100  # Telegram: inline keyboard buttons per message (chatops.telegram.render)
PAGER_BUTTONS = 3
# screens that are help themselves, or a dialog's mechanics: no "?"
NO_HELP = frozenset({"help", "cancel", "stepup", HELP_ACTION, LEARN_ACTION})

# Catalog keys that are refusals and errors shown to a user: every one has a KB target.
ERROR_KEY = re.compile(
    r"^(refuse\.(?!private_where\.)"
    r"|error\."
    r"|stepup\.(invalid|replayed|throttled|not_enrolled|no_private_chat|prompt_group"
    r"|prompt_private)$"
    r"|dialog\.(expired|gone)$"
    r"|slack\.error\."
    r"|[a-z_.]+\.(err|error)\.[a-z_.]+$"
    r"|[a-z_.]+\.bad_[a-z_]+$"
    r"|[a-z_.]+\.(unknown|invalid|not_found|too_long|expired|failed)$)"
)
# ... except titles and bodies of pushed alerts and health/analytics wording ("unknown"
# as a state, "failed" as a column), which are reports, not an answer to the reader.
NOT_ERROR_KEY = re.compile(
    r"^(alerts\.(llm|fleet|backup|silences)\.|health\.|analytics\.|whoami\.|users\.f\."
    r"|users\.last_failed$|setup\.problem\.|.*\.(title|body|resolved)$)"
)

TARGETS: tuple[tuple[str, str], ...] = (
    ("refuse.denied", "chat-access-denied"),
    ("refuse.unlinked", "chat-not-linked"),
    ("link.invalid", "chat-not-linked"),
    ("refuse.locked", "chat-account-locked"),
    ("refuse.button", "chat-button-expired"),
    ("refuse.param", "chat-button-expired"),
    ("refuse.private_only", "chat-private-only"),
    ("refuse.secret_*", "chat-private-only"),
    ("stepup.no_private_chat", "chat-private-only"),
    ("slack.error.user", "chat-private-only"),
    ("refuse.forwarded", "chat-forwarded"),
    ("refuse.db_unavailable", "chat-db-unavailable"),
    ("stepup.invalid", "security-totp-rejected"),
    ("stepup.replayed", "security-totp-rejected"),
    ("users.login.invalid", "security-totp-rejected"),
    ("stepup.*", "chat-stepup-needed"),
    ("error.*", "chat-internal-error"),
    ("slack.error.bug", "chat-internal-error"),
    ("dialog.*", "chat-dialog-expired"),
    ("slack.error.not_in_channel", "slack-not-in-channel"),
    ("slack.error.ratelimited", "slack-ratelimited"),
    ("slack.error.token", "slack-invalid-auth"),
    ("slack.error.missing_scope*", "slack-invalid-auth"),
    ("slack.error.restricted", "slack-invalid-auth"),
    ("slack.error.channel_not_found", "slack-channel-not-found"),
    ("slack.error.is_archived", "slack-channel-not-found"),
    ("slack.error.message_gone", "tg-not-modified"),
    ("slack.error.too_long", "tg-message-too-long"),
    ("slack.error.*", "slack-ratelimited"),
    ("preview.error.llm", "llm-connection"),
    ("setup.llm.bad_key", "llm-invalid-key"),
    ("setup.llm.*", "llm-connection"),
    ("setup.db.*", "db-pg-refused"),
    ("backup.*failed", "backup-failed"),
    ("*.bad_hours", "config-active-hours"),
    ("*.bad_timezone", "config-timezone"),
    ("*.error.timezone", "config-timezone"),
    ("notify.channels.*_failed", "alerts-email-failed"),
    ("alerts.channels.test_failed", "alerts-email-failed"),
    ("bots.err.bad_token_format", "tg-401-unauthorized"),
    ("bots.err.token_refused", "tg-401-unauthorized"),
    ("bots.err.telegram_unreachable", "tg-unreachable"),
    ("bots.err.not_in_chat", "tg-403-kicked"),
    ("chats.err.not_member", "tg-403-kicked"),
    ("chats.err.no_rights", "tg-no-rights"),
    ("users.err.needs_stepup", "chat-stepup-needed"),
    ("settings.err.admin_only", "chat-access-denied"),
    ("settings.err.model*", "llm-model-not-found"),
    ("settings.err.*stale", "chat-button-expired"),
    ("*", "chat-bad-input"),  # a value outside its rule: usage, too long, bad format
)
"""(catalog key pattern, KB entry id): the first pattern that matches names the entry."""


def error_keys() -> list[str]:
    """Every refusal/error key of the catalogs (both languages must define it)."""
    keys = set(i18n.catalog("en")) | set(i18n.catalog("tr"))
    return sorted(k for k in keys if ERROR_KEY.match(k) and not NOT_ERROR_KEY.match(k))


def target(key: str) -> str | None:
    """The KB entry that explains the message ``key``, or None when it is no error key."""
    if not ERROR_KEY.match(key) or NOT_ERROR_KEY.match(key):
        return None
    return next((entry for pattern, entry in TARGETS if fnmatchcase(key, pattern)), None)


def learn_entries() -> tuple[str, ...]:
    """Every entry a Learn more button may open (``help.learn``'s declared choices)."""
    return tuple(sorted({entry for _p, entry in TARGETS}))


@cache
def _patterns(lang: str) -> list[tuple[str, re.Pattern[str], str]]:
    """Each error key's template as (its longest fixed piece, a regex where placeholders
    match anything, key), longest template first, so a text can be traced to its key."""
    out = []
    catalog = i18n.catalog(lang)
    for key in error_keys():
        template = catalog.get(key, "")
        parts = re.split(r"\{[^{}]*\}", template)
        if sum(len(p.strip()) for p in parts) < 12:
            continue  # too little fixed text to recognise it safely
        regex = ".+?".join(re.escape(p) for p in parts)
        out.append((max(parts, key=len), re.compile(regex, re.DOTALL), key))
    out.sort(key=lambda lpk: -len(lpk[1].pattern))
    return out


def key_of(text: str, lang: str) -> str | None:
    """The error key whose template produced ``text`` (in ``lang``), if any. A plain
    substring test on each template's longest fixed piece comes first: the regexes, which
    may backtrack over a long text, run only for the few candidates left."""
    for literal, pattern, key in _patterns(lang):
        if literal in text and pattern.search(text):
            return key
    return None


def _count(view: View) -> int:
    return sum(len(r) for r in view.buttons) + (PAGER_BUTTONS if view.pager else 0)


def _has(view: View, action: str) -> bool:
    return any(b.action == action for row in view.buttons for b in row)


def learn_button(ctx: Context, entry_id: str) -> Button:
    """📘 Learn more: the KB entry ``entry_id``, for any reader (``help.learn``)."""
    return Button(ctx.t("help.btn.learn"), LEARN_ACTION, {"id": entry_id})


def only_learn(view: View) -> bool:
    """Whether the view's buttons are Learn more alone (a refusal)."""
    return all(b.action == LEARN_ACTION for row in view.buttons for b in row)


def add_learn_more(ctx: Context, view: View, key: str | None = None) -> View:
    """Add 📘 Learn more for the refusal/error ``key`` (else the first error or warning
    text of ``view`` recognised as one); nothing when there is no target or no room."""
    if key is None:
        for block in view.blocks:
            if isinstance(block, Alert) and block.level in ("error", "warning"):
                key = key_of(block.text, ctx.lang)
                if key is not None:
                    break
    entry = target(key) if key else None
    if entry is None or _has(view, LEARN_ACTION) or _count(view) >= MAX_BUTTONS:
        return view
    view.buttons.append([learn_button(ctx, entry)])
    return view


def help_button(ctx: Context, command_name: str) -> Button:
    """❓ Help: the help of ``command_name``'s screens (``kb.about``)."""
    return Button(ctx.t("kb.btn.about"), HELP_ACTION, {"cmd": command_name})


def _may_read_help(ctx: Context, command_name: str) -> bool:
    about = ctx.registry.get(HELP_ACTION)
    cmd = ctx.registry.commands.get(command_name)
    return (
        about is not None
        and cmd is not None
        and not cmd.hidden
        and ctx.level >= about.level
        and ctx.level >= cmd.level
    )


def decorate(ctx: Context, view: View | None) -> View | None:
    """What the pipeline shows for a handler's ``view``: plus ❓ Help, or 📘 Learn more
    when it is an error screen (see the module docstring for who gets which)."""
    if view is None or ctx.spec is None or not view.context_help or view.ask is not None:
        return view
    if any(isinstance(b, Alert) and b.level == "error" for b in view.blocks):
        return add_learn_more(ctx, view)
    learned = add_learn_more(ctx, view) if not view.buttons else view
    if _has(learned, LEARN_ACTION):
        return learned  # a warning that is a known refusal (an expired dialog)
    name = ctx.spec.command_name
    if ctx.spec.id in NO_HELP or name in NO_HELP or _has(view, HELP_ACTION):
        return view
    if _count(view) >= MAX_BUTTONS or not _may_read_help(ctx, name):
        return view
    view.buttons.append([help_button(ctx, name)])
    return view
