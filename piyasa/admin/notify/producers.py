"""The producers that existed before the bus, turned into events on it.

- the health alerter (``piyasa.admin.health.alerts.Alerter``) gets :func:`health_sink`:
  each firing/resolved notice it decides is stored as an event (a sink that raises is
  retried by the alerter, so a notice is never lost while the database is away);
- the fleet (``piyasa.runtime.fleet``): worker crashes, bots disabled (kicked, token
  revoked), chats migrated, circuit breakers opened/closed, LLM auth/quota errors;
- the user service (``piyasa.admin.users``): lockout, new admin, MFA reset, first TOTP
  enrolment.

Each builder returns an :class:`Event` (titles are catalogue keys in
``chatops/locales/<lang>/alerts.json``); producers publish with :func:`emit`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from piyasa.admin.notify.events import Event, emit

HealthSink = Callable[[Any], Awaitable[None]]
LLM_ALERT_KINDS = ("auth", "quota")  # errors a retry never fixes: an operator must act


def health_event(notice: Any) -> Event:
    """A health alert notice (``AlertNotice``) as an event: a critical component, or its
    recovery. The database carries ``depends`` nothing; what it causes is inhibited."""
    return Event(
        source="health",
        key=notice.component,
        severity="critical",
        title_key="alerts.health.critical.title",
        body_key="alerts.health.critical.body" if notice.summary else None,
        params={"component": notice.component, "summary": notice.summary or ""},
        labels={"component": notice.component},
        resolved=notice.kind == "resolved",
        at=notice.at,
    )


def health_sink(notify: Any) -> HealthSink:
    """An alerter sink that stores each notice in ``notify`` (a NotifyService) at once."""

    async def sink(notice: Any) -> None:
        await notify.ingest(health_event(notice))
        notify._wake.set()

    return sink


def _bot_labels(name: str) -> dict[str, str]:
    head, _, rest = name.replace(":", "-").partition("-")
    return {"bot": rest} if head == "bot" and rest else {}


def fleet_event(worker: str, kind: str, detail: str) -> Event | None:
    """The fleet's ``on_event(worker, kind, detail)`` as an event (None: not alerted)."""
    if kind == "crashed":
        return Event(
            "fleet",
            f"crash:{worker}",
            "warning",
            "alerts.fleet.crashed.title",
            {"worker": worker, "detail": detail},
            labels=_bot_labels(worker),
        )
    if kind == "disabled":
        return Event(
            "fleet",
            f"disabled:{worker}",
            "critical",
            "alerts.fleet.disabled.title",
            {"detail": detail},
            labels=_bot_labels(worker),
        )
    if kind == "migrated":
        return Event(
            "fleet", f"migrated:{worker}", "info", "alerts.fleet.migrated.title", {"detail": detail}
        )
    return None


def breaker_event(name: str, state: str, error: str | None) -> Event | None:
    """A circuit breaker that opened (warning) or closed again (its recovery)."""
    if state not in ("open", "closed"):
        return None
    return Event(
        "fleet",
        f"breaker:{name}",
        "warning",
        "alerts.fleet.breaker.title",
        {"name": name, "error": error or ""},
        body_key="alerts.fleet.breaker.body",
        labels=_bot_labels(name),
        resolved=state == "closed",
    )


def llm_event(kind: str | None, error: str | None, *, ok: bool) -> Event | None:
    """An LLM auth or quota error (critical), or the success that ends it."""
    if ok:
        return Event(
            "llm",
            "provider",
            "critical",
            "alerts.llm.error.title",
            {"kind": "", "error": ""},
            resolved=True,
        )
    if kind not in LLM_ALERT_KINDS:
        return None
    return Event(
        "llm",
        "provider",
        "critical",
        "alerts.llm.error.title",
        {"kind": kind, "error": error or ""},
        body_key="alerts.llm.error.body",
    )


SECURITY_SEVERITY = {
    "lockout": "warning",
    "new_admin": "warning",
    "mfa_reset": "warning",
    "totp_enrolled": "info",
}


def security(extras: dict[str, Any] | None, what: str, user: str, actor: str) -> bool:
    """Emit security event ``what`` (lockout, new_admin, mfa_reset, totp_enrolled) about
    ``user``, done by ``actor``; False when no bus listens in this process."""
    event = Event(
        "security",
        f"{what}:{user}",
        SECURITY_SEVERITY[what],  # type: ignore[arg-type]
        f"alerts.security.{what}.title",
        {"user": user, "actor": actor},
        body_key="alerts.security.by",
        labels={"user": user},
    )
    return emit(extras, event)
