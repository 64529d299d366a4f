"""Health summaries as phrases, so every surface can say them in the reader's language.

A probe describes a reading as a list of :class:`Phrase` (a catalogue key and its figures);
``Reading.summary`` is their English rendering from :data:`EN` (what the history, the JSON
API and the logs keep), and the chat renders the same phrases through its catalogues
(``health.phrase.<key>`` in chatops/locales/*/health.json, whose English text must equal
:data:`EN`: tests/health_chat/test_summary_language.py checks). Figures are passed as
text already formatted; a string figure that names a state (``open``, ``probe``) is
translated by the surface when its catalogue has ``health.word.<value>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RAW = "raw"  # a phrase that is only its ``text`` figure (a model name, a size): not translated

EN: dict[str, str] = {
    RAW: "{text}",
    "db": "{type} {ms} ms",
    "db_unreachable": "{type}: unreachable ({error})",
    "unreachable": "unreachable ({error})",
    "pool": "pool {used}/{capacity}",
    "latency": "{ms} ms",
    "keys": "{n} keys",
    "hit_rate": "hit rate {n}%",
    "cpu": "CPU {n}%",
    "memory": "memory {n}%",
    "disk_free": "disk free {n}%",
    "workers": "workers {active}/{total}",
    "restarts": "restarts {n}",
    "last_message_s": "last message {n} s ago",
    "last_message_min": "last message {n} min ago",
    "last_message_h": "last message {n} h ago",
    "outbox": "outbox {n}",
    "paused": "paused",
    "more_disabled": "{n} more disabled",
    "bots_ok": "{n} bots ok",
    "bots_bad": "{n} bots, {bad} with problems",
    "rate_429": "{n} × 429 of {attempts} sends in {window} s",
    "admin_token_refused": "admin bot: token refused (401 Unauthorized): revoked or wrong",
    "admin_getme_code": "admin bot: getMe answered {n}",
    "admin_unreachable": "admin bot: cannot reach the Bot API ({error})",
    "jobs": "{n} jobs",
    "jobs_failed": "{n} failed",
    "jobs_missed": "{n} missed",
    "targets_ok": "{n} targets ok",
    "targets_bad": "{n} targets, failing: {names}",
    "breaker": "breaker {state}",
    "llm_failing": "failing ({kind}, {by}), no success yet",
    "llm_failing_s": "failing ({kind}, {by}), last success {n} s ago",
    "llm_failing_min": "failing ({kind}, {by}), last success {n} min ago",
    "llm_failing_h": "failing ({kind}, {by}), last success {n} h ago",
    "llm_no_call": "no call yet",
    "llm_answering": "answering ({by})",
    "last_error": "last error {error}",
    "stuck": "no answer (previous check still running)",
    "timeout": "no answer within {s} s",
    "cancelled": "check cancelled",
    "check_failed": "check failed ({error})",
    "instances": "{n} instances",
    "admin_role_on": "admin role on {who}",
    "admin_role_nobody": "admin role held by no instance",
    "versions_differ": "versions differ: {versions}",
    "heartbeat_late": "this instance's heartbeat is not being written",
}


@dataclass(frozen=True)
class Phrase:
    """One part of a summary: ``key`` in :data:`EN` (and the catalogues), its figures, and
    the separator that goes before it when it is not the first (``", "`` or ``"; "``)."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)
    sep: str = ", "


def phrase(key: str, sep: str = ", ", **params: Any) -> Phrase:
    """A :class:`Phrase`; raises KeyError for a key :data:`EN` does not know (a typo would
    otherwise only show in the chat)."""
    if key not in EN:
        raise KeyError(f"no health phrase {key!r}")
    return Phrase(key, params, sep)


def age(prefix: str, seconds: float) -> tuple[str, str]:
    """(``prefix_s|_min|_h`` key, figure) for an age, as the summaries round it."""
    if seconds < 90:
        return f"{prefix}_s", f"{seconds:.0f}"
    if seconds < 5400:
        return f"{prefix}_min", f"{seconds / 60:.0f}"
    return f"{prefix}_h", f"{seconds / 3600:.1f}"


def render(phrases: Iterable[Phrase], templates: Mapping[str, str] | None = None) -> str:
    """The phrases joined into one line, in ``templates`` (default :data:`EN`)."""
    out = ""
    for i, p in enumerate(phrases):
        text = (templates or EN)[p.key].format(**p.params)
        out += (p.sep if i else "") + text
    return out
