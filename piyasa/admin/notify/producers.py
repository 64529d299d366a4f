"""The producers that existed before the bus, turned into events on it.

- the health alerter (``piyasa.admin.health.alerts.Alerter``) gets :func:`health_sink`:
  each firing/resolved notice it decides is stored as an event (a sink that raises is
  retried by the alerter, so a notice is never lost while the database is away);
- the fleet (``piyasa.runtime.fleet``): worker crashes, bots disabled (kicked, token
  revoked), chats migrated, circuit breakers opened/closed, LLM auth/quota errors;
- the user service (``piyasa.admin.users``): lockout, new admin, MFA reset, first TOTP
  enrolment;
- the schema: migrations pending (at `piyasa up`'s start and in `piyasa check`, which
  stores it for the running instance with :func:`record`) and migrations applied;
- the setup wizard: setup completed; backups report through `piyasa/backup/events.py`.

Each builder returns an :class:`Event` (titles are catalogue keys in
``chatops/locales/<lang>/alerts.json``); producers publish with :func:`emit`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from piyasa.admin.notify.events import Event, emit

HealthSink = Callable[[Any], Awaitable[None]]
LLM_ALERT_KINDS = ("auth", "quota")  # errors a retry never fixes: an operator must act


# Health components that read or write the database to do their work: while the database
# is critical their alerts are its consequences, muted by the default inhibition rule
# (``rules.DEFAULT_INHIBITIONS``); told once the database is back if still unresolved
# (``pipeline.release_inhibited``).
DATABASE_DEPENDENT_COMPONENTS = frozenset({"runtime", "scheduler", "instances"})
# Exception class names (and SQLite's message) of a database that cannot be reached or used:
# SQLAlchemy's wrappers, asyncpg's connection errors, SQLite's lock.
DATABASE_ERROR_WORDS = (
    "OperationalError",
    "InterfaceError",
    "DBAPIError",
    "ConnectionDoesNotExistError",
    "CannotConnectNowError",
    "PostgresConnectionError",
    "TooManyConnectionsError",
    "DatabaseUnavailable",
    "database is locked",
)


def database_caused(detail: str | None) -> bool:
    """True when an error text names a database failure (``DATABASE_ERROR_WORDS``)."""
    return bool(detail) and any(word in detail for word in DATABASE_ERROR_WORDS)  # type: ignore[operator]


def _depends(labels: dict[str, str], on_database: bool) -> dict[str, str]:
    return {**labels, "depends": "database"} if on_database else labels


def health_event(notice: Any) -> Event:
    """A health alert notice (``AlertNotice``) as an event: a critical component, or its
    recovery. Components in ``DATABASE_DEPENDENT_COMPONENTS`` carry ``depends=database``,
    so a database outage is told once, not once per component it takes down."""
    return Event(
        source="health",
        key=notice.component,
        severity="critical",
        title_key="alerts.health.critical.title",
        body_key="alerts.health.critical.body" if notice.summary else None,
        params={"component": notice.component, "summary": notice.summary or ""},
        labels=_depends(
            {"component": notice.component},
            notice.component in DATABASE_DEPENDENT_COMPONENTS,
        ),
        resolved=notice.kind == "resolved",
        at=notice.at,
    )


def health_sink(notify: Any) -> HealthSink:
    """An alerter sink that stores each notice in ``notify`` (a NotifyService) at once."""

    async def sink(notice: Any) -> None:
        await notify.ingest(health_event(notice))
        notify._wake.set()

    return sink


async def open_health_alerts(services: Any) -> dict[str, Any]:
    """Health incidents still active in the store (component -> first seen), for the
    alerter of a new process to adopt (``Alerter.adopt``): its recovery is then told
    even when it comes before the new process saw the component critical. Empty when
    the database cannot say (it is away: health alerts about it go straight to chat)."""
    from sqlalchemy import select

    from piyasa.db.notify_models import Notification

    try:
        async with services.sessions() as session:
            rows = await session.execute(
                select(Notification.fingerprint, Notification.first_seen).where(
                    Notification.source == "health",
                    Notification.state.in_(("open", "acknowledged", "silenced")),
                )
            )
            return {fp.split(":", 1)[1]: since for fp, since in rows}
    except Exception as exc:
        import logging

        logging.getLogger(__name__).info("notify: open health alerts unknown: %s", exc)
        return {}


def _bot_labels(name: str) -> dict[str, str]:
    head, _, rest = name.replace(":", "-").partition("-")
    rest = rest.split("/", 1)[0]  # bot-7/chat-3: a pair of bot 7
    return {"bot": rest} if head == "bot" and rest else {}


def fleet_event(worker: str, kind: str, detail: str) -> Event | None:
    """The fleet's ``on_event(worker, kind, detail)`` as an event (None: not alerted).

    ``crashed`` opens (or adds to: a crash loop is one incident with a count) the worker's
    crash incident; ``recovered`` (the supervisor: the restarted worker ran ``stable_s``
    without crashing) resolves it."""
    if kind in ("crashed", "recovered"):
        return Event(
            "fleet",
            f"crash:{worker}",
            "warning",
            "alerts.fleet.crashed.title",
            {"worker": worker, "detail": detail},
            labels=_depends(_bot_labels(worker), kind == "crashed" and database_caused(detail)),
            resolved=kind == "recovered",
        )
    if kind in ("disabled", "enabled"):  # an operator's re-enable ends the incident
        return Event(
            "fleet",
            f"disabled:{worker}",
            "critical",
            "alerts.fleet.disabled.title",
            {"detail": detail},
            labels=_bot_labels(worker),
            resolved=kind == "enabled",
        )
    if kind == "migrated":
        return Event(
            "fleet", f"migrated:{worker}", "info", "alerts.fleet.migrated.title", {"detail": detail}
        )
    return None


def error_rate_event(failed: int, attempts: int, window_s: float, *, firing: bool) -> Event:
    """The fleet's message error rate (``piyasa.runtime.error_rate``): ``failed`` of
    ``attempts`` messages (LLM errors and Telegram send failures) over ``window_s``
    seconds went wrong — a warning while ``firing``, its recovery when not."""
    rate = failed / attempts if attempts else 0.0
    return Event(
        "fleet",
        "error_rate",
        "warning",
        "alerts.fleet.error_rate.title",
        {
            "n": f"{100 * rate:.1f}",
            "failed": failed,
            "attempts": attempts,
            "minutes": f"{window_s / 60:g}",
        },
        labels={"check": "error_rate"},
        resolved=not firing,
    )


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
        labels=_depends(_bot_labels(name), database_caused(error)),
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
    if kind == "quota" and "quota" not in (error or "").lower():
        return None  # a 429 rate limit (RPM/TPM): retried after its wait, nothing to fix
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


# -- the schema and setup ---------------------------------------------------------------


def schema_event(current: str | None, head: str) -> Event:
    """Pending migrations: a warning while the database's schema (``current`` Alembic
    revision, None for an empty database) is not this version's ``head``; the same
    fingerprint resolved once it is (`piyasa migrate`)."""
    return Event(
        "schema",
        "migrations",
        "warning",
        "alerts.schema.pending.title",
        {"current": current or "empty", "head": head},
        body_key="alerts.schema.pending.body",
        resolved=current == head,
    )


def migrations_applied_event(before: str | None, head: str) -> Event:
    """`piyasa up` brought the embedded database's schema from ``before`` to ``head``
    (info; one incident per head revision)."""
    return Event(
        "schema",
        f"applied:{head}",
        "info",
        "alerts.schema.applied.title",
        {"before": before or "empty", "head": head},
    )


async def schema_status(engine: Any) -> Event | None:
    """The schema event owed for the database behind ``engine`` now: pending (or its
    recovery); None for an empty database, which has no notification tables to hold it."""
    from piyasa.db import migrate

    current = await migrate.current_revision(engine)
    if current is None:
        return None
    return schema_event(current, migrate.head_revision())


async def record(services: Any, event: Event) -> bool:
    """Store ``event`` straight in the notification tables, for a process without a
    notification service (`piyasa check`): the running `piyasa up` delivers it on its
    next tick. False (and nothing stored) when the database cannot take it."""
    from piyasa.admin.notify.service import NotifyService

    try:
        await NotifyService(services).ingest(event)
    except Exception as exc:  # an old schema, the database away: the check says so itself
        import logging

        logging.getLogger(__name__).info("notify: %s not stored: %s", event.fingerprint, exc)
        return False
    return True


def setup_completed(extras: dict[str, Any] | None, actor: str, at: Any = None) -> bool:
    """Emit "setup completed by ``actor``" (success); ``at`` (an aware datetime) makes
    each completion its own notification. False when no bus listens."""
    from datetime import UTC, datetime

    at = at or datetime.now(UTC)
    event = Event(
        "setup",
        f"completed:{at:%Y%m%dT%H%M%S}",
        "success",
        "alerts.setup.completed.title",
        {"actor": actor},
        at=at,
    )
    return emit(extras, event)
