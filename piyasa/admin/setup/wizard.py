"""The setup wizard's service side: its persisted state, what [Start system] applies, and
how the running process picks that up.

State: the answers live in the ``settings`` table (``setup.wizard.<surface>.<user>.<chat>``)
as well as the cache, so a restart mid-wizard resumes where the admin was. Secrets in it
are sealed with the SecretBox at once (``*_enc``); only masked hints are shown back.

Applying (hot reload vs restart):

- LLM key / base URL / model -> settings table (``llm_api_key_encrypted``, ...): the fleet
  re-reads the table every 2 s; [Start system] also refreshes it at once.
- Fleet bots and chats -> ``bots`` / ``chats`` rows; the fleet's roster is reloaded at once.
- Admin password / MFA -> the user row; the identity generation is bumped.
- Language -> config file and the live settings; monitoring and backup schedule -> the
  settings table (``monitoring_enabled``, ``backup_schedule``), read by those services.
- Database -> last, once everything above is written: the running process copies the
  live database to the new one with the fleet stopped and moves to it, and the config file
  names it for `piyasa restart` (``piyasa.admin.setup.dbswitch``).
- Redis URL -> the config file (sealed). The cache and rate buckets of a running process
  are built once at start, so it needs `piyasa restart`; the summary says so instead of
  pretending.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from piyasa.admin.identity import users_changed
from piyasa.admin.setup.configfile import update_config
from piyasa.admin.setup.dbcopy import Progress
from piyasa.admin.setup.dbswitch import Switched, switch_database
from piyasa.crypto import fingerprint
from piyasa.db.models import Bot, Chat, Setting, User
from piyasa.services import Services

log = logging.getLogger(__name__)
STATE_PREFIX = "setup.wizard."
COMPLETED_KEY = "setup.completed"
BACKUP_CHOICES = ("daily", "weekly", "off")


class SettingsTableStore:
    """Dialog state in the settings table (one row per user and chat)."""

    def _row_key(self, key: str) -> str:
        return STATE_PREFIX + key.removeprefix("dialog:").replace(":", ".")

    async def load(self, ctx: Any, key: str) -> dict[str, Any] | None:
        async with ctx.services.sessions() as session:
            value = await session.scalar(
                select(Setting.value).where(Setting.key == self._row_key(key))
            )
        return dict(value) if isinstance(value, dict) else None

    async def save(self, ctx: Any, key: str, state: dict[str, Any]) -> None:
        row_key = self._row_key(key)
        async with ctx.services.sessions() as session, session.begin():
            row = await session.get(Setting, row_key)
            if row is None:
                session.add(Setting(key=row_key, value=state, updated_by="setup"))
            else:
                row.value = state
                row.version += 1

    async def delete(self, ctx: Any, key: str) -> None:
        from sqlalchemy import delete

        async with ctx.services.sessions() as session, session.begin():
            await session.execute(delete(Setting).where(Setting.key == self._row_key(key)))


# --- MFA -------------------------------------------------------------------------------------


def totp_qr_png(uri: str) -> bytes:
    import io

    import qrcode

    img = qrcode.make(uri, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def totp_qr_text(uri: str) -> str:
    """The QR drawn with half blocks, for a terminal."""
    import io

    import qrcode

    qr = qrcode.QRCode(border=2)
    qr.add_data(uri)
    qr.make(fit=True)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()


async def enable_totp(services: Services, user_id: int, secret_enc: str, step: int) -> None:
    """Turn MFA on with a seed the user proved they hold (``step`` = the code's time step)."""
    async with services.sessions() as session, session.begin():
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(totp_secret_encrypted=secret_enc, totp_enabled=True, totp_last_step=step)
        )
    await users_changed(services)


# --- apply --------------------------------------------------------------------------------------


@dataclass
class Applied:
    hot: list[str] = field(default_factory=list)  # catalog keys of what took effect now
    restart: list[str] = field(default_factory=list)  # what waits for `piyasa restart`
    bots_added: int = 0
    chats_added: int = 0
    fleet_bots: int = 0
    fleet_chats: int = 0
    database: Switched | None = None  # the database switch, when the wizard asked for one


async def _set(services: Services, key: str, value: Any, actor: str) -> None:
    async with services.sessions() as session, session.begin():
        row = await session.get(Setting, key)
        if row is None:
            session.add(Setting(key=key, value=value, updated_by=actor))
        else:
            row.value = value
            row.version += 1
            row.updated_by = actor


async def apply(
    services: Services, data: dict[str, Any], actor: str, *, progress: Progress | None = None
) -> Applied:
    """Write everything the wizard collected and make the running process use it.

    A database switch comes last (``progress`` follows its copy): everything written
    before it is copied, everything after it lands in the new database.
    """
    from piyasa.db.base import utcnow

    out = Applied()
    admin = data.get("admin") or {}
    if admin.get("user_id") and admin.get("password_hash"):
        async with services.sessions() as session, session.begin():
            await session.execute(
                update(User)
                .where(User.id == admin["user_id"])
                .values(password_hash=admin["password_hash"])
            )
        await users_changed(services)
        out.hot.append("admin_password")
    if admin.get("user_id") and admin.get("totp_enc") and admin.get("totp_step") is not None:
        await enable_totp(services, admin["user_id"], admin["totp_enc"], int(admin["totp_step"]))
        out.hot.append("admin_mfa")

    llm = data.get("llm") or {}
    if llm.get("key_enc"):
        await _set(services, "llm_api_key_encrypted", llm["key_enc"], actor)
        await _set(services, "llm_base_url", llm.get("base_url") or "", actor)
        out.hot.append("llm")
    if llm.get("model"):
        await _set(services, "llm_model", llm["model"], actor)

    out.bots_added, out.chats_added = await _add_fleet(services, data)
    if out.bots_added or out.chats_added:
        out.hot.append("fleet")

    adv = data.get("adv") or {}
    config_updates: dict[str, str | None] = {}
    if "monitoring" in adv:
        await _set(services, "monitoring_enabled", bool(adv["monitoring"]), actor)
        out.hot.append("monitoring")
    if adv.get("backup") in BACKUP_CHOICES:
        await _set(services, "backup_schedule", adv["backup"], actor)
        out.hot.append("backup")
    if adv.get("lang") in ("tr", "en") and adv["lang"] != services.settings.lang:
        config_updates["PIYASA_LANG"] = adv["lang"]
        services.settings = dataclasses.replace(services.settings, lang=adv["lang"])
        out.hot.append("lang")
    if adv.get("redis_enc"):
        url = services.box.decrypt(adv["redis_enc"])
        if url != services.settings.redis_url:
            config_updates["PIYASA_REDIS_URL"] = url
            out.restart.append("redis")
    if config_updates:
        update_config(services.settings.data_dir, config_updates, services.box)

    await _set(services, COMPLETED_KEY, {"at": utcnow().isoformat(), "by": actor}, actor)
    from piyasa.admin.notify.producers import setup_completed as completed_event

    completed_event(services.extras, actor)
    await reload_running(services)
    db = data.get("db") or {}
    if db.get("kind") == "postgresql" and db.get("url_enc") and db.get("migrated"):
        url = services.box.decrypt(db["url_enc"])
        if url != services.settings.database_url:
            out.database = await switch_database(services, url, progress=progress)
    fleet = services.extras.get("fleet")
    if fleet is not None:
        out.fleet_bots = len(fleet.roster.bots)
        out.fleet_chats = len(fleet.roster.chats)
    else:
        async with services.sessions() as session:
            out.fleet_bots = len((await session.scalars(select(Bot.id))).all())
            out.fleet_chats = len((await session.scalars(select(Chat.id))).all())
    return out


async def reload_running(services: Services) -> None:
    """The hot part of [Start system]: the fleet re-reads settings and its roster now."""
    fleet = services.extras.get("fleet")
    if fleet is None:
        return
    try:
        await fleet.settings_store.refresh()
        fleet.apply_settings()
        await fleet.reload_roster()
    except Exception:
        log.exception("the fleet did not reload its configuration")
        raise


async def _add_fleet(services: Services, data: dict[str, Any]) -> tuple[int, int]:
    bots = data.get("bots") or []
    chats = data.get("chats") or []
    added_bots = added_chats = 0
    async with services.sessions() as session, session.begin():
        known = set((await session.scalars(select(Bot.token_fingerprint))).all())
        known_tg = set((await session.scalars(select(Bot.telegram_id))).all())
        for b in bots:
            if b["fingerprint"] in known or b["id"] in known_tg:
                continue
            session.add(
                Bot(
                    telegram_id=int(b["id"]),
                    token_encrypted=b["token_enc"],
                    token_fingerprint=b["fingerprint"],
                    username=b.get("username") or None,
                    display_name=b.get("name") or None,
                    persona={"name": b.get("name") or b.get("username") or "bot"},
                )
            )
            added_bots += 1
        have = set((await session.scalars(select(Chat.telegram_id))).all())
        for c in chats:
            if int(c["id"]) in have:
                continue
            session.add(
                Chat(
                    telegram_id=int(c["id"]),
                    title=c.get("title") or None,
                    kind=c.get("type") or "supergroup",
                    topics=["bist", "fx", "crypto", "macro"],
                )
            )
            added_chats += 1
    return added_bots, added_chats


def seal_bot(services: Services, token: str, me: dict[str, Any]) -> dict[str, Any]:
    """What the wizard keeps about a verified fleet bot (the token sealed at once)."""
    return {
        "token_enc": services.box.encrypt(token),
        "fingerprint": fingerprint(token),
        "id": int(me["id"]),
        "username": me.get("username") or "",
        "name": me.get("first_name") or "",
    }


async def setup_completed(services: Services) -> bool:
    async with services.sessions() as session:
        return (await session.get(Setting, COMPLETED_KEY)) is not None
