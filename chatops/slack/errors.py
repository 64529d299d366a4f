"""Slack Web API errors as answers a user can act on, in their language.

Slack reports a failed call as ``{"ok": false, "error": "<code>"}`` (HTTP 200) and a rate
limit as HTTP 429 with ``Retry-After``; slack_sdk raises ``SlackApiError`` for both. The
codes and what they mean come from each method's page on api.slack.com/methods (e.g.
``chat.postMessage``: ``not_in_channel``, ``channel_not_found``, ``is_archived``,
``msg_too_long``, ``restricted_action``; every method: ``invalid_auth``, ``token_revoked``,
``account_inactive``, ``missing_scope`` with the scope in ``needed``, ``ratelimited``).

The generic "something went wrong, try again" is kept for our own bugs: an error here
says what to do, and says "try again" only where trying again can help.
"""

from __future__ import annotations

import logging
from typing import Any

from chatops import i18n
from chatops.pipeline import Halt
from chatops.slack.client import retry_after_s
from chatops.views import Alert, View

log = logging.getLogger(__name__)

# Slack error code -> catalog key (chatops/locales/*/slack.json: slack.error.<key>)
TOKEN_REFUSED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
_KEYS = {
    **dict.fromkeys(TOKEN_REFUSED, "token"),
    "not_in_channel": "not_in_channel",
    "channel_not_found": "channel_not_found",
    "is_archived": "is_archived",
    "missing_scope": "missing_scope",
    "ratelimited": "ratelimited",
    "rate_limited": "ratelimited",
    "msg_too_long": "too_long",
    "too_many_attachments": "too_long",
    "invalid_blocks": "bug",
    "invalid_blocks_format": "bug",
    "invalid_arguments": "bug",
    "no_text": "bug",
    "restricted_action": "restricted",
    "restricted_action_read_only_channel": "restricted",
    "restricted_action_thread_only_channel": "restricted",
    "restricted_action_non_threadable_channel": "restricted",
    "ekm_access_denied": "restricted",
    "team_access_not_granted": "restricted",
    "user_not_found": "user",
    "user_disabled": "user",
    "user_not_visible": "user",
    "cannot_dm_bot": "user",
    "message_not_found": "message_gone",
    "cant_update_message": "message_gone",
    "edit_window_closed": "message_gone",
    "fatal_error": "slack_down",
    "internal_error": "slack_down",
    "service_unavailable": "slack_down",
    "request_timeout": "slack_down",
}


def error_code(exc: BaseException) -> str:
    """The ``error`` of a ``SlackApiError`` (``ratelimited`` for a bare 429), or ``""``."""
    response = getattr(exc, "response", None)
    if response is None:
        return ""
    code = ""
    try:
        code = str(response.get("error") or "")
    except Exception:  # a body that was not JSON
        code = ""
    if not code and getattr(response, "status_code", None) == 429:
        code = "ratelimited"
    return code


def explain(lang: str, exc: BaseException, *, bot_name: str = "") -> str:
    """One answer, in ``lang``, for a Slack Web API error: what happened and what to do.

    ``bot_name`` is the app's bot user name (from ``auth.test``), for ``/invite @name``.
    """
    code = error_code(exc) or "unknown"
    key = _KEYS.get(code, "other")
    response: Any = getattr(exc, "response", None)
    values: dict[str, Any] = {"error": code, "bot": bot_name or "piyasa"}
    if key == "missing_scope":
        needed = str(_field(response, "needed") or "")
        values["scope"] = needed or "?"
        if not needed:
            key = "missing_scope_unnamed"
    if key == "ratelimited":
        wait = retry_after_s(getattr(response, "headers", None))
        values["seconds"] = wait if wait is not None else 60
    return i18n.t(lang, f"slack.error.{key}", **values)


def _field(response: Any, name: str) -> Any:
    try:
        return response.get(name) if response is not None else None
    except Exception:
        return None


def halt(exc: BaseException, lang: str, *, bot_name: str = "", what: str = "") -> Halt:
    """A :class:`~chatops.pipeline.Halt` showing :func:`explain` (audited as ``error``
    with the Slack code as detail). ``what`` names the call for the log line."""
    code = error_code(exc) or type(exc).__name__
    log.warning("slack %s failed: %s", what or "call", code)
    view = View(blocks=[Alert("error", explain(lang, exc, bot_name=bot_name))])
    return Halt(view, "error", f"slack:{code}")
