"""Fleet-wide settings changed from chat or the shell: validated, versioned, audited, undoable.

Every change goes to the ``settings`` table (its ``version`` bumped), gets a row in
``setting_changes`` (old and new value, actor, reason) and an audit row. The running fleet
reads the table through :class:`piyasa.runtime.settings_store.SettingsStore`, which
refreshes every few seconds; when this process runs the fleet (``services.extras["fleet"]``)
the change also asks that store to refresh at once, so the very next decision honours it.
Other instances pick it up at their next refresh.

``SETTING_SPECS`` says, per key, the type, the valid range and the role a change needs
(``"operator"`` or ``"admin"`` for security-relevant ones). Bad input raises
:class:`SettingError` with a catalog key (``settings.err.<code>``) and changes nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from piyasa.admin import audit
from piyasa.db.base import utcnow
from piyasa.db.fleetadmin_models import SettingChange as ChangeRow
from piyasa.db.models import Setting
from piyasa.errors import UserFacingError
from piyasa.runtime.settings_store import DEFAULTS
from piyasa.services import Services

MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]{0,200}$")
TRUE = ("1", "true", "yes", "on", "evet", "açık", "acik")
FALSE = ("0", "false", "no", "off", "hayır", "hayir", "kapalı", "kapali")


class SettingError(UserFacingError):
    """A setting change that cannot be made; ``key`` is the catalog key saying why."""

    def __init__(self, key: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class SettingSpec:
    """One changeable setting: ``kind`` float|int|bool|choice|text|model|url, its range."""

    key: str
    kind: str
    role: str = "operator"
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    max_len: int = 0

    def range_text(self) -> str:
        """The valid range as plain text (``0 – 10``, ``tr | en``, ``≤ 200 chars``)."""
        if self.kind in ("float", "int"):
            return f"{_fmt(self.min)} – {_fmt(self.max)}"
        if self.kind == "bool":
            return "on | off"
        if self.choices:
            return " | ".join(self.choices)
        return f"≤ {self.max_len}"


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


# Sources: OpenAI chat completions accept temperature 0–2; Telegram's Bot FAQ allows about
# 20 messages a minute in one group, so a fleet of 30 groups tops out near 600/min.
SETTING_SPECS: dict[str, SettingSpec] = {
    s.key: s
    for s in (
        SettingSpec("max_msgs_per_min", "float", min=0.0, max=600.0),
        SettingSpec("scale_factor", "float", min=0.0, max=10.0),
        SettingSpec("llm_model", "model", max_len=64),
        SettingSpec("llm_temperature", "float", min=0.0, max=2.0),
        SettingSpec("footer_enabled", "bool"),
        SettingSpec("fleet_footer", "text", max_len=200),
        SettingSpec("default_language", "choice", choices=("tr", "en")),
        SettingSpec("reply_first", "bool"),
        # the auto-adjuster's bounds (piyasa.fleetadmin.autoadjust): it never lowers
        # scale_factor below this floor
        SettingSpec("autoadjust_enabled", "bool"),
        SettingSpec("autoadjust_min_scale", "float", min=0.0, max=10.0),
        SettingSpec("llm_base_url", "url", role="admin", max_len=200),
    )
}


@dataclass(frozen=True)
class SettingChange:
    """A change as the surfaces show it: ``old`` -> ``new`` at ``version``."""

    id: int
    key: str
    old: Any
    new: Any
    version: int
    actor: str
    reason: str | None
    at: datetime
    undo_of: int | None = None
    undone_by: int | None = None


def spec_of(key: str) -> SettingSpec:
    """The spec of ``key``; SettingError ``settings.err.unknown`` for any other key."""
    spec = SETTING_SPECS.get(str(key).strip().lower())
    if spec is None:
        raise SettingError(
            "settings.err.unknown",
            f"unknown setting {key!r}",
            name=str(key)[:64],
            keys=", ".join(SETTING_SPECS),
        )
    return spec


def parse_value(spec: SettingSpec, raw: Any) -> Any:
    """``raw`` (text from chat/shell, or a JSON value) as the setting's type, validated.

    Raises SettingError (``settings.err.number|range|bool|choice|too_long|model|url``)."""
    params = {"name": spec.key, "range": spec.range_text(), "value": str(raw)[:64]}
    if spec.kind in ("float", "int"):
        try:
            number = (
                float(str(raw).strip().replace(",", ".")) if not isinstance(raw, bool) else None
            )
        except ValueError:
            number = None
        if number is None or not math.isfinite(number):
            raise SettingError("settings.err.number", f"{spec.key} needs a number", **params)
        assert spec.min is not None and spec.max is not None
        if not spec.min <= number <= spec.max:
            raise SettingError(
                "settings.err.range", f"{spec.key} must be within {spec.range_text()}", **params
            )
        return int(number) if spec.kind == "int" else number
    if spec.kind == "bool":
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE or word in FALSE:
            return word in TRUE
        raise SettingError("settings.err.bool", f"{spec.key} is on or off", **params)
    text = str(raw).strip()
    if spec.kind == "choice":
        if text.lower() not in spec.choices:
            raise SettingError(
                "settings.err.choice", f"{spec.key} is one of {spec.range_text()}", **params
            )
        return text.lower()
    if len(text) > spec.max_len:
        raise SettingError(
            "settings.err.too_long",
            f"{spec.key} takes at most {spec.max_len} characters",
            **params,
        )
    if spec.kind == "model" and text and not MODEL_RE.match(text):
        raise SettingError("settings.err.model", f"{text!r} is not a model name", **params)
    if spec.kind == "url" and text and not URL_RE.match(text):
        raise SettingError("settings.err.url", f"{text!r} is not an http(s) URL", **params)
    return text


def _row_change(row: ChangeRow) -> SettingChange:
    return SettingChange(
        id=row.id,
        key=row.key,
        old=row.old_value,
        new=row.new_value,
        version=row.version,
        actor=row.actor,
        reason=row.reason,
        at=row.at,
        undo_of=row.undo_of,
        undone_by=row.undone_by,
    )


@dataclass(frozen=True)
class SettingValue:
    """A setting as the list shows it: its value in effect and the table's version."""

    spec: SettingSpec
    value: Any
    version: int  # 0: never changed (the built-in default is in effect)
    updated_by: str | None
    updated_at: datetime | None


async def current(services: Services) -> list[SettingValue]:
    """Every changeable setting with its value in effect, in ``SETTING_SPECS`` order."""
    async with services.sessions() as session:
        rows = {
            r.key: r
            for r in await session.scalars(select(Setting).where(Setting.key.in_(SETTING_SPECS)))
        }
    out = []
    for key, spec in SETTING_SPECS.items():
        row = rows.get(key)
        out.append(
            SettingValue(
                spec,
                row.value if row is not None else DEFAULTS.get(key),
                row.version if row is not None else 0,
                row.updated_by if row is not None else None,
                row.updated_at if row is not None else None,
            )
        )
    return out


async def get(services: Services, key: str) -> SettingValue:
    """One setting (SettingError for an unknown key)."""
    spec = spec_of(key)
    return next(v for v in await current(services) if v.spec.key == spec.key)


async def _write(
    services: Services,
    spec: SettingSpec,
    value: Any,
    *,
    actor: str,
    reason: str | None,
    expected_version: int | None,
    undo_of: int | None = None,
) -> SettingChange:
    async with services.sessions() as session, session.begin():
        row = await session.get(Setting, spec.key, with_for_update=True)
        version = row.version if row is not None else 0
        if expected_version is not None and expected_version != version:
            raise SettingError(
                "settings.err.stale",
                f"{spec.key} changed meanwhile (version {version}); look again",
                name=spec.key,
                version=version,
            )
        old = row.value if row is not None else DEFAULTS.get(spec.key)
        if row is None:
            row = Setting(key=spec.key, value=value, version=1, updated_by=actor[:128])
            session.add(row)
        else:
            row.value = value
            row.version += 1
            row.updated_by = actor[:128]
            row.updated_at = utcnow()
        change = ChangeRow(
            key=spec.key,
            old_value=old,
            new_value=value,
            version=row.version,
            actor=actor[:128],
            reason=reason,
            undo_of=undo_of,
        )
        session.add(change)
        await session.flush()
        if undo_of is not None:
            undone = await session.get(ChangeRow, undo_of)
            if undone is not None:
                undone.undone_by = change.id
        result = _row_change(change)
    await audit.record(
        services,
        actor=actor,
        surface=_surface_of(actor),
        action="settings.undo" if undo_of else "settings.set",
        target=spec.key,
        params={"old": old, "new": value, "version": result.version, "reason": reason},
        result="ok",
    )
    await apply_now(services)
    return result


def _surface_of(actor: str) -> str:
    return actor if actor in ("cli", "system") else "chat"


async def apply_now(services: Services) -> None:
    """Have this process's running fleet (if any) re-read the settings table now, through
    its own SettingsStore; other instances are told (piyasa.cluster.changes)."""
    from piyasa.cluster.changes import announce

    fleet = services.extras.get("fleet")
    store = getattr(fleet, "settings_store", None)
    if store is not None and await store.refresh():
        fleet.apply_settings()
    await announce(services, "settings")  # the other instances, within a second


async def change_setting(
    services: Services,
    key: str,
    raw_value: Any,
    *,
    actor: str,
    reason: str | None = None,
    expected_version: int | None = None,
) -> SettingChange:
    """Validate ``raw_value`` for ``key``, write it (version + 1), record old/new, audit it
    and apply it to the running fleet. ``expected_version`` (what the user saw) refuses a
    change made on top of someone else's (``settings.err.stale``). The role a key needs is
    the caller's to check (``SETTING_SPECS[key].role``); the shell is trusted."""
    spec = spec_of(key)
    value = parse_value(spec, raw_value)
    return await _write(
        services, spec, value, actor=actor, reason=reason, expected_version=expected_version
    )


async def last_change(services: Services, key: str | None = None) -> SettingChange | None:
    """The newest change not undone yet (of ``key``, or of any setting)."""
    stmt = select(ChangeRow).where(ChangeRow.undone_by.is_(None), ChangeRow.undo_of.is_(None))
    if key is not None:
        stmt = stmt.where(ChangeRow.key == spec_of(key).key)
    async with services.sessions() as session:
        row = await session.scalar(stmt.order_by(ChangeRow.id.desc()).limit(1))
    return _row_change(row) if row is not None else None


async def undoable(services: Services, seen: set[tuple[str, int]]) -> list[SettingChange]:
    """Of the changes ``seen`` as (key, version) pairs (e.g. read from audit rows), those
    :func:`undo_last` would undo now: the last change of its key, not undone yet."""
    out = []
    for key in sorted({k for k, _ in seen if k in SETTING_SPECS}):
        last = await last_change(services, key)
        if last is not None and (key, last.version) in seen:
            out.append(last)
    return out


async def undo_last(services: Services, key: str | None, *, actor: str) -> SettingChange:
    """Put back the value before the last change (of ``key``, or of any setting) as a new,
    audited change. SettingError ``settings.err.nothing_to_undo`` when there is none, and
    ``settings.err.stale`` when the setting was changed since by other means."""
    last = await last_change(services, key)
    if last is None:
        raise SettingError("settings.err.nothing_to_undo", "no change to undo", name=key or "*")
    spec = spec_of(last.key)
    async with services.sessions() as session:
        # the table must still be where this history left it: a change made around it
        # (another tool writing the table) makes the undo stale, not silently lost
        latest = await session.scalar(
            select(func.max(ChangeRow.version)).where(ChangeRow.key == spec.key)
        )
    return await _write(
        services,
        spec,
        last.old,
        actor=actor,
        reason=f"undo #{last.id}",
        expected_version=int(latest or last.version),
        undo_of=last.id,
    )


async def history(
    services: Services, key: str | None = None, limit: int = 20
) -> list[SettingChange]:
    """The newest ``limit`` changes (of ``key``, or of every setting), newest first."""
    stmt = select(ChangeRow)
    if key is not None:
        stmt = stmt.where(ChangeRow.key == spec_of(key).key)
    async with services.sessions() as session:
        rows = await session.scalars(stmt.order_by(ChangeRow.id.desc()).limit(max(1, limit)))
        return [_row_change(r) for r in rows]
