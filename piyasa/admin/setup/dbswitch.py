"""The wizard's database switch at [Start system]: copy, then move the running process.

[Migrate now] only proves the target works (a first copy with row counts). The switch
itself happens at [Start system], after everything else the wizard collected has been
written, so nothing the wizard stored and nothing written afterwards is lost:

1. the fleet stops (whatever it decided stays queued in the outbox, which is copied);
2. a mirror copy (:func:`piyasa.admin.setup.dbcopy.copy_database` with ``mirror=True``)
   makes the target an exact copy in one transaction: the LLM key and model, the admin's
   password and two-factor seed, the completed wizard (its state row already gone), the
   bots, chats, messages, audit rows and outbox;
3. the config file names the target, so `piyasa restart` comes up on it;
4. the running process moves to it: the session factory every part shares is rebound to
   a new engine, so every write from here on (audit rows, messages) lands in the target;
5. a new fleet starts on the target.

A copy that fails changes nothing: the target transaction is rolled back, the config file
is not touched, the process stays on the old database and the fleet starts again there.
The old database is never written by the switch and stays as a fallback.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any

from piyasa.admin.setup.configfile import update_config
from piyasa.admin.setup.dbcopy import CopyError, Progress, copy_database
from piyasa.services import Services

log = logging.getLogger(__name__)


@dataclass
class Switched:
    """What the switch did; ``ok`` False means nothing changed and ``reason`` says why."""

    ok: bool
    live: str  # the database in use now: "PostgreSQL host:port/db" or "SQLite /path"
    fallback: str = ""  # the old database, kept as it was; "" when not switched
    rows: int = 0
    tables: int = 0
    reason: str = ""
    env_overrides: bool = False  # PIYASA_DATABASE_URL in the environment beats the file


async def switch_database(
    services: Services, target_url: str, *, progress: Progress | None = None
) -> Switched:
    """Copy the live database to ``target_url`` and move this process to it.

    ``target_url``: a PostgreSQL (or SQLite) URL as the wizard stored it. Never raises for
    a copy that fails: the result says why and the process stays where it was.
    """
    from piyasa.admin.setup.verify import normalize_database_url
    from piyasa.db.engine import create_engine

    old_url = services.settings.database_url
    target = normalize_database_url(target_url)
    fleet = services.extras.get("fleet")
    if fleet is not None:
        await fleet.stop()
    try:
        report = await copy_database(services.engine, target, progress=progress, mirror=True)
        update_config(services.settings.data_dir, {"PIYASA_DATABASE_URL": target}, services.box)
    except (CopyError, OSError) as exc:
        reason = str(exc) if isinstance(exc, CopyError) else f"config file: {exc.strerror}"
        log.warning("database switch not done: %s", reason)
        await _restart_fleet(services, fleet)
        return Switched(False, live=describe(old_url), reason=reason)
    old_engine = services.engine
    new_engine = create_engine(target)
    services.sessions.configure(bind=new_engine)  # every holder of the factory moves with it
    services.engine = new_engine
    services.settings = dataclasses.replace(services.settings, database_url=target)
    await old_engine.dispose()
    await _restart_fleet(services, fleet)
    log.info("database switched to %s; %s kept as it was", describe(target), describe(old_url))
    env_url = os.environ.get("PIYASA_DATABASE_URL", "")
    return Switched(
        True,
        live=describe(target),
        fallback=describe(old_url),
        rows=report.rows,
        tables=len(report.tables),
        env_overrides=bool(env_url) and env_url != target,
    )


def describe(url: str) -> str:
    """A database as an operator names it, without credentials."""
    from piyasa.admin.setup.verify import _where

    kind = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    return f"{kind} {_where(url)}"


async def _restart_fleet(services: Services, stopped: Any) -> None:
    """A fresh fleet (the one `piyasa up` builds) on whatever database is live now."""
    if stopped is None:
        return
    fleet = type(stopped)(services)
    services.extras["fleet"] = fleet
    health = services.extras.get("health")
    if health is not None:
        health.set_fleet(fleet)
    try:
        await fleet.start()
    except Exception:
        log.exception("the fleet did not start again after the database switch")
