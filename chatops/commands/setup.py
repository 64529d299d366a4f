"""/setup: the conversational setup wizard (Telegram, private chat with the admin bot).

Steps: admin account + MFA -> LLM -> fleet bots and chats -> database -> advanced ->
summary with [Start system]. Every answer is staged in the wizard's state (secrets sealed
at once, the messages carrying them deleted) and applied together by [Start system]
(``piyasa.admin.setup.wizard.apply``), so Cancel really changes nothing. The state is also
kept in the database, so after a restart `/setup` resumes at the same step.

Who may run it: admins — and, by the declared bootstrap rule :data:`SETUP_CODE`, anyone
while a setup code waits: ``/setup CODE`` (the one-time code `piyasa setup` printed) links
the sender to that admin, after which the pipeline checks the admin role again. The
pipeline enforces both, /help lists /setup to whom they open it, and every wizard action
requires the admin role.
Slack cannot delete what a user typed, so there `/piyasa setup` shows the status and
points to the Telegram wizard.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from typing import Any

from chatops import i18n, pipeline
from chatops.commands.registry import Arg, Bootstrap, command
from chatops.context import Context
from chatops.dialogs import STAY, Dialog, Step
from chatops.views import Alert, Button, Fields, Image, Text, View
from piyasa.admin import auth, identity, passwords
from piyasa.admin.setup import codes, verify, wizard
from piyasa.admin.setup.dbcopy import CopyError, copy_database
from piyasa.admin.users import MIN_PASSWORD_LEN, UserError, get_user
from piyasa.config import TELEGRAM_TOKEN_RE, mask, mask_url
from piyasa.crypto import fingerprint

log = logging.getLogger(__name__)
CHAT_ID_RE = re.compile(r"^-?\d{5,20}$")
MAX_MODEL_BUTTONS = 12
PROGRESS_EDIT_EVERY_S = 0.5
OK, NO = "✅", "❌"

_flash: contextvars.ContextVar[tuple[str, str, dict[str, Any]] | None] = contextvars.ContextVar(
    "setup_flash", default=None
)


def flash(level: str, key: str, **kw: Any) -> None:
    """A one-off notice shown on top of the next rendering of the step (this request only)."""
    _flash.set((level, key, kw))


def _take_flash(ctx: Context) -> list[Alert]:
    item = _flash.get()
    _flash.set(None)
    if item is None:
        return []
    level, key, kw = item
    return [Alert(level, ctx.t(key, **kw))]  # type: ignore[arg-type]


def _problem(ctx: Context, area: str, outcome: verify.Outcome, **kw: Any) -> str:
    """The sentence for a failed check, with the next step (falls back to a generic one)."""
    key = f"setup.problem.{area}.{outcome.problem}"
    if not i18n.has(key):
        key = f"setup.problem.{area}.other"
    return ctx.t(key, detail=outcome.detail, **kw)


async def _admin_bot_username(ctx: Context) -> str:
    bot = getattr(ctx.responder, "bot", None)
    if bot is not None:
        try:
            return (await bot.me()).username or ""
        except Exception:
            return ""
    token = ctx.services.settings.admin_bot_token
    if not token:
        return ""
    me = await verify.telegram_get_me(
        ctx.services.settings.telegram_api_url, token.reveal(), deadline_s=3
    )
    return me.data.get("username", "") if me.ok else ""


# --- step 1: admin account and MFA ---------------------------------------------------------


async def render_admin(ctx: Context, data: dict[str, Any]) -> View:
    a = data.setdefault("admin", {})
    view = View(title=ctx.t("setup.admin.title"))
    view.blocks.append(
        Fields(
            [
                (ctx.t("setup.admin.username"), a.get("username", "?")),
                (ctx.t("setup.admin.password"), _yes(ctx, a.get("has_password"))),
                (ctx.t("setup.admin.mfa"), _yes(ctx, a.get("mfa") or a.get("totp_step"))),
            ]
        )
    )
    phase = a.get("phase", "")
    if phase == "password":
        view.blocks.append(Text(ctx.t("setup.admin.send_password", n=MIN_PASSWORD_LEN)))
    elif phase == "mfa_code":
        view.blocks.append(Text(ctx.t("setup.admin.send_code")))
    else:
        view.blocks.append(Text(ctx.t("setup.admin.intro")))
    view.blocks.extend(_take_flash(ctx))
    row = []
    if not a.get("has_password"):
        row.append(WIZ.choice(ctx, ctx.t("setup.admin.set_password"), "admin", "password"))
    if not (a.get("mfa") or a.get("totp_step") is not None):
        row.append(WIZ.choice(ctx, ctx.t("setup.admin.enable_mfa"), "admin", "mfa"))
    view.row(*row)
    view.row(WIZ.choice(ctx, ctx.t("setup.next"), "admin", "next"))
    return view


def _yes(ctx: Context, value: Any) -> str:
    return f"{OK} {ctx.t('yes')}" if value else f"{NO} {ctx.t('no')}"


async def _send_qr(ctx: Context, a: dict[str, Any], secret: str) -> None:
    """The QR code (its caption holds the seed) as its own protected message, remembered
    in the wizard state so :func:`_drop_qr` deletes it when the enrolment ends."""
    uri = auth.totp_uri(secret, a.get("username", "admin"))
    caption = ctx.t("setup.admin.qr_caption", key=secret)
    view = View(images=[Image(wizard.totp_qr_png(uri), caption)], protect=True)
    ref = await ctx.send(view)
    if ref is not None:
        a["qr_message"] = [ref.chat, ref.message]


async def _drop_qr(ctx: Context, a: dict[str, Any]) -> None:
    """Delete the QR message once its seed is enrolled or abandoned: it must not stay in
    the chat history (a bot may delete its own messages for 48 hours, Bot API)."""
    where = a.pop("qr_message", None)
    bot = getattr(ctx.responder, "bot", None)  # the wizard runs on Telegram only
    if not where or bot is None:
        return
    try:
        await bot.delete_message(int(where[0]), int(where[1]))
    except Exception as exc:  # never block the wizard; the seed was shown protected
        log.warning("could not delete the two-factor QR message: %s", type(exc).__name__)


async def choose_admin(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    a = data.setdefault("admin", {})
    await _drop_qr(ctx, a)  # whatever was chosen, an earlier QR's seed is no longer pending
    if value == "next":
        a["phase"] = ""
        return None
    if value == "password":
        a["phase"] = "password"
        return STAY
    if value == "mfa":
        secret = auth.new_totp_secret()
        a.update(phase="mfa_code", pending_enc=ctx.services.box.encrypt(secret))
        await _send_qr(ctx, a, secret)
        return STAY
    return STAY


async def text_admin(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    a = data.setdefault("admin", {})
    phase = a.get("phase", "")
    if phase == "password":
        s = passwords.strength(text, a.get("username", ""))
        if s.refused:  # the one policy every surface applies
            flash("error", f"users.err.password_{s.label}")
            return STAY
        a.update(password_hash=auth.hash_password(text), has_password=True, phase="")
        hint = " ".join(ctx.t(f"setup.pw.hint.{h}") for h in s.hints)
        flash(
            "success", "setup.admin.password_ok", strength=ctx.t(f"setup.pw.{s.label}"), hint=hint
        )
        return STAY
    if phase == "mfa_code":
        secret = ctx.services.box.decrypt(a["pending_enc"])
        step = auth.matching_step(secret, text)
        if step is None:
            flash("error", "setup.admin.code_wrong")
            return STAY
        a.update(totp_enc=a.pop("pending_enc"), totp_step=step, phase="", mfa=True)
        await _drop_qr(ctx, a)
        flash("success", "setup.admin.mfa_ok")
        return STAY
    flash("info", "setup.use_buttons")
    return STAY


# --- step 2: LLM ----------------------------------------------------------------------------


async def render_llm(ctx: Context, data: dict[str, Any]) -> View:
    llm = data.setdefault("llm", {})
    view = View(title=ctx.t("setup.llm.title"))
    base = llm.get("base_url") or ""
    endpoint = verify.llm_base_url(base, ctx.services.settings)  # where the key is sent
    provider = ctx.t("setup.llm.openai_default") if endpoint == verify.OPENAI_API_BASE else endpoint
    view.blocks.append(
        Fields(
            [
                (ctx.t("setup.llm.provider"), provider),
                (ctx.t("setup.llm.key"), llm.get("key_hint") or f"{NO} {ctx.t('no')}"),
                (ctx.t("setup.llm.model"), llm.get("model") or "—"),
            ]
        )
    )
    if llm.get("phase") == "base_url":
        view.blocks.append(Text(ctx.t("setup.llm.send_base_url")))
    else:
        view.blocks.append(Text(ctx.t("setup.llm.send_key")))
    view.blocks.extend(_take_flash(ctx))
    models = llm.get("models") or []
    if models:
        view.blocks.append(Text(ctx.t("setup.llm.choose_model", n=len(models))))
        picks = verify.chat_models_first(models)[:MAX_MODEL_BUTTONS]
        buttons = [WIZ.choice(ctx, m, "llm", f"model:{m}") for m in picks]
        for i in range(0, len(buttons), 2):
            view.row(*buttons[i : i + 2])
    row = []
    if llm.get("key_enc"):
        label = "setup.try_again" if llm.get("failed") else "setup.llm.test"
        row.append(WIZ.choice(ctx, ctx.t(label), "llm", "test"))
    if llm.get("phase") == "base_url" or base:
        row.append(WIZ.choice(ctx, ctx.t("setup.llm.use_openai"), "llm", "default"))
    else:
        row.append(WIZ.choice(ctx, ctx.t("setup.llm.other_provider"), "llm", "base_url"))
    view.row(*row)
    last = [WIZ.choice(ctx, ctx.t("setup.later"), "llm", "skip")]
    if llm.get("model") and llm.get("tested"):
        last.insert(0, WIZ.choice(ctx, ctx.t("setup.next"), "llm", "next"))
    view.row(*last)
    return view


async def _test_llm(ctx: Context, llm: dict[str, Any]) -> None:
    key = ctx.services.box.decrypt(llm["key_enc"])
    base = verify.llm_base_url(llm.get("base_url"), ctx.services.settings)
    outcome = await verify.llm_models(key, base)
    if outcome.ok:
        llm.update(models=outcome.data["models"], tested=True, failed=False)
        if llm.get("model") not in llm["models"]:
            llm["model"] = ""
        flash("success", "setup.llm.ok", n=len(llm["models"]), ms=outcome.latency_ms)
    else:
        llm.update(models=[], tested=False, failed=True)
        flash("error", "setup.raw", text=_problem(ctx, "llm", outcome, base=base))


async def choose_llm(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    llm = data.setdefault("llm", {})
    if value in ("skip", "next"):
        llm["phase"] = ""
        return None
    if value == "test" and llm.get("key_enc"):
        await _test_llm(ctx, llm)
    elif value == "base_url":
        llm["phase"] = "base_url"
    elif value == "default":
        llm.update(base_url="", phase="", models=[], tested=False)
        if llm.get("key_enc"):
            await _test_llm(ctx, llm)
    elif value.startswith("model:"):
        model = value.split(":", 1)[1]
        if model in (llm.get("models") or []):
            llm["model"] = model
            return None
    return STAY


async def text_llm(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    llm = data.setdefault("llm", {})
    text = text.strip()
    if llm.get("phase") == "base_url":
        if not re.match(r"^https?://[^\s/]+", text):
            flash("error", "setup.llm.bad_url")
            return STAY
        llm.update(base_url=text.rstrip("/"), phase="", models=[], tested=False)
        if llm.get("key_enc"):
            await _test_llm(ctx, llm)
        else:
            flash("success", "setup.llm.base_url_ok")
        return STAY
    if len(text) < 8 or " " in text:
        flash("error", "setup.llm.bad_key")
        return STAY
    llm.update(key_enc=ctx.services.box.encrypt(text), key_hint=mask(text), models=[], model="")
    await _test_llm(ctx, llm)
    return STAY


# --- step 3: fleet bots and chats --------------------------------------------------------------


async def render_fleet(ctx: Context, data: dict[str, Any]) -> View:
    bots, chats = data.setdefault("bots", []), data.setdefault("chats", [])
    view = View(title=ctx.t("setup.fleet.title"))
    view.blocks.append(Text(ctx.t("setup.fleet.intro")))
    if bots:
        lines = [f"{OK} @{b['username']} — {b['name']}" for b in bots]
        view.blocks.append(Text(ctx.t("setup.fleet.bots") + "\n" + "\n".join(lines)))
    if chats:
        lines = [f"{OK} {c['title']} ({c['id']})" for c in chats]
        view.blocks.append(Text(ctx.t("setup.fleet.chats") + "\n" + "\n".join(lines)))
    view.blocks.extend(_take_flash(ctx))
    row = []
    if bots and chats:
        row.append(WIZ.choice(ctx, ctx.t("setup.next"), "fleet", "next"))
    row.append(WIZ.choice(ctx, ctx.t("setup.later"), "fleet", "skip"))
    view.row(*row)
    return view


async def choose_fleet(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    return None if value in ("next", "skip") else STAY


async def text_fleet(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    text = text.strip()
    api = ctx.services.settings.telegram_api_url
    bots, chats = data.setdefault("bots", []), data.setdefault("chats", [])
    if TELEGRAM_TOKEN_RE.match(text):
        if any(b["fingerprint"] == fingerprint(text) for b in bots):
            flash("info", "setup.fleet.bot_known")
            return STAY
        me = await verify.telegram_get_me(api, text)
        if not me.ok:
            flash("error", "setup.raw", text=_problem(ctx, "token", me))
            return STAY
        admin = ctx.services.settings.admin_bot_token.reveal()
        if admin and admin.split(":", 1)[0] == str(me.data["id"]):
            flash("error", "setup.fleet.is_admin_bot")
            return STAY
        bots.append(wizard.seal_bot(ctx.services, text, me.data))
        flash(
            "success",
            "setup.fleet.bot_ok",
            username=me.data["username"],
            name=me.data["first_name"],
        )
        return STAY
    if CHAT_ID_RE.match(text):
        if not bots:
            flash("error", "setup.fleet.bot_first")
            return STAY
        chat_id = int(text)
        if any(int(c["id"]) == chat_id for c in chats):
            flash("info", "setup.fleet.chat_known")
            return STAY
        outcome = verify.Outcome(False, "error")
        for b in bots:
            outcome = await verify.telegram_get_chat(
                api, ctx.services.box.decrypt(b["token_enc"]), chat_id
            )
            if outcome.ok:
                break
        if not outcome.ok:
            names = ", ".join(f"@{b['username']}" for b in bots)
            flash("error", "setup.raw", text=_problem(ctx, "chat", outcome, bots=names, id=chat_id))
            return STAY
        chats.append(outcome.data)
        flash("success", "setup.fleet.chat_ok", title=outcome.data["title"], id=chat_id)
        return STAY
    flash("error", "setup.fleet.what_is_this")
    return STAY


# --- step 4: database -------------------------------------------------------------------------


async def render_db(ctx: Context, data: dict[str, Any]) -> View:
    db = data.setdefault("db", {})
    settings = ctx.services.settings
    view = View(title=ctx.t("setup.db.title"))
    current = (
        "SQLite" if settings.sqlite_default else f"PostgreSQL ({mask_url(settings.database_url)})"
    )
    view.blocks.append(Fields([(ctx.t("setup.db.current"), current)]))
    if db.get("kind") == "postgresql":
        if db.get("where"):
            view.blocks.append(Fields([(ctx.t("setup.db.target"), db["where"])]))
        if not db.get("url_enc"):
            view.blocks.append(Text(ctx.t("setup.db.send_url")))
    else:
        view.blocks.append(Text(ctx.t("setup.db.intro")))
    view.blocks.extend(_take_flash(ctx))
    if db.get("kind") == "postgresql":
        row = []
        if db.get("url_enc"):
            label = "setup.try_again" if db.get("failed") else "setup.db.test"
            row.append(WIZ.choice(ctx, ctx.t(label), "db", "test"))
        if db.get("tested") and settings.sqlite_default:
            row.append(WIZ.choice(ctx, ctx.t("setup.db.migrate"), "db", "migrate"))
        view.row(*row)
        last = [WIZ.choice(ctx, ctx.t("setup.db.keep_sqlite"), "db", "sqlite")]
        if db.get("migrated") or not settings.sqlite_default:
            last.insert(0, WIZ.choice(ctx, ctx.t("setup.next"), "db", "next"))
        view.row(*last)
    else:
        view.row(
            WIZ.choice(ctx, ctx.t("setup.db.keep_current"), "db", "sqlite"),
            WIZ.choice(ctx, ctx.t("setup.db.use_pg"), "db", "pg"),
        )
    return view


async def _test_db(ctx: Context, db: dict[str, Any]) -> None:
    url = ctx.services.box.decrypt(db["url_enc"])
    outcome = await verify.database_test(url, deadline_s=5)
    if outcome.ok:
        db.update(tested=True, failed=False, where=outcome.data["where"])
        flash("success", "setup.db.ok", where=outcome.data["where"], ms=outcome.latency_ms)
    else:
        db.update(tested=False, failed=True)
        flash("error", "setup.raw", text=_problem(ctx, "db", outcome, where=db.get("where", "")))


async def choose_db(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    db = data.setdefault("db", {})
    if value == "sqlite":
        data["db"] = {"kind": "keep"}
        return None
    if value == "next":
        return None
    if value == "pg":
        db["kind"] = "postgresql"
    elif value == "test" and db.get("url_enc"):
        await _test_db(ctx, db)
    elif value == "migrate" and db.get("tested"):
        await _migrate(ctx, db)
    return STAY


async def text_db(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    db = data.setdefault("db", {})
    if db.get("kind") != "postgresql":
        flash("info", "setup.use_buttons")
        return STAY
    try:
        url = verify.normalize_database_url(text.strip())
    except ValueError:
        flash("error", "setup.db.bad_url")
        return STAY
    if not url.startswith("postgresql"):
        flash("error", "setup.db.bad_url")
        return STAY
    db.update(url_enc=ctx.services.box.encrypt(url), where=verify._where(url), migrated=None)
    await _test_db(ctx, db)
    return STAY


async def _migrate(ctx: Context, db: dict[str, Any]) -> None:
    """Copy everything with a live progress message, then check row counts."""
    target = ctx.services.box.decrypt(db["url_enc"])
    ref = None
    if ctx.responder is not None:
        ref = await ctx.send(View(blocks=[Alert("info", ctx.t("setup.db.copying", pct=0))]))
    last = [0.0]

    async def progress(table: str, done: int, total: int, i: int, n: int) -> None:
        now = time.monotonic()
        if ref is None or not table or now - last[0] < PROGRESS_EDIT_EVERY_S:
            return
        last[0] = now
        pct = int(100 * i / max(n, 1))
        text = ctx.t("setup.db.copying_table", pct=pct, table=table, done=done, total=total)
        await ctx.edit(ref, View(blocks=[Alert("info", text)]))

    try:
        report = await copy_database(ctx.services.engine, target, progress=progress)
    except CopyError as exc:
        db["migrated"] = None
        flash("error", "setup.db.copy_failed", reason=str(exc))
        return
    if ref is not None:
        await ctx.edit(ref, View(blocks=[Alert("info", ctx.t("setup.db.copying", pct=100))]))
    if report.ok:
        db["migrated"] = {"rows": report.rows, "tables": len(report.tables)}
        flash(
            "success",
            "setup.db.copied",
            rows=report.rows,
            tables=len(report.tables),
            s=round(report.seconds, 1),
        )
    else:
        db["migrated"] = None
        bad = ", ".join(f"{t.name} {t.source_rows}≠{t.target_rows}" for t in report.mismatched)
        flash("error", "setup.db.count_mismatch", tables=bad)


# --- step 5: advanced --------------------------------------------------------------------------


async def render_adv(ctx: Context, data: dict[str, Any]) -> View:
    adv = data.setdefault("adv", {})
    adv.setdefault("monitoring", True)
    adv.setdefault("backup", "daily")
    adv.setdefault("lang", ctx.services.settings.lang)
    view = View(title=ctx.t("setup.adv.title"))
    redis = adv.get("redis_where") or ctx.t("setup.adv.redis_none")
    view.blocks.append(
        Fields(
            [
                ("Redis", redis),
                (ctx.t("setup.adv.monitoring"), _yes(ctx, adv["monitoring"])),
                (ctx.t("setup.adv.backup"), ctx.t(f"setup.adv.backup.{adv['backup']}")),
                (ctx.t("setup.adv.lang"), ctx.t(f"lang.name.{adv['lang']}")),
            ]
        )
    )
    if adv.get("phase") == "redis":
        view.blocks.append(Text(ctx.t("setup.adv.send_redis")))
    view.blocks.extend(_take_flash(ctx))
    redis_row = [WIZ.choice(ctx, ctx.t("setup.adv.redis_set"), "adv", "redis")]
    if adv.get("redis_enc"):
        label = "setup.try_again" if adv.get("redis_failed") else "setup.adv.redis_test"
        redis_row.append(WIZ.choice(ctx, ctx.t(label), "adv", "redis_test"))
    view.row(*redis_row)
    view.row(WIZ.choice(ctx, ctx.t("setup.adv.monitoring_toggle"), "adv", "monitoring"))
    view.row(
        *[
            WIZ.choice(ctx, ctx.t(f"setup.adv.backup.{b}"), "adv", f"backup:{b}")
            for b in wizard.BACKUP_CHOICES
        ]
    )
    view.row(
        *[
            WIZ.choice(ctx, i18n.t(code, f"lang.name.{code}"), "adv", f"lang:{code}")
            for code in i18n.LANGS
        ]
    )
    view.row(WIZ.choice(ctx, ctx.t("setup.next"), "adv", "next"))
    return view


async def _test_redis(ctx: Context, adv: dict[str, Any]) -> None:
    url = ctx.services.box.decrypt(adv["redis_enc"])
    outcome = await verify.redis_test(url)
    adv["redis_failed"] = not outcome.ok
    if outcome.ok:
        flash("success", "setup.adv.redis_ok", version=outcome.data.get("version", ""))
    else:
        flash("error", "setup.raw", text=_problem(ctx, "redis", outcome))


async def choose_adv(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    adv = data.setdefault("adv", {})
    if value == "next":
        adv["phase"] = ""
        return None
    if value == "redis":
        adv["phase"] = "redis"
    elif value == "redis_test" and adv.get("redis_enc"):
        await _test_redis(ctx, adv)
    elif value == "monitoring":
        adv["monitoring"] = not adv.get("monitoring", True)
    elif value.startswith("backup:") and value[7:] in wizard.BACKUP_CHOICES:
        adv["backup"] = value[7:]
    elif value.startswith("lang:") and value[5:] in i18n.LANGS:
        adv["lang"] = value[5:]
    return STAY


async def text_adv(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    adv = data.setdefault("adv", {})
    if adv.get("phase") != "redis":
        flash("info", "setup.use_buttons")
        return STAY
    url = text.strip()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        flash("error", "setup.adv.redis_bad_url")
        return STAY
    adv.update(redis_enc=ctx.services.box.encrypt(url), redis_where=mask_url(url), phase="")
    await _test_redis(ctx, adv)
    return STAY


# --- step 6: summary ---------------------------------------------------------------------------


def summary_items(ctx: Context, data: dict[str, Any]) -> list[tuple[str, str]]:
    a, llm = data.get("admin") or {}, data.get("llm") or {}
    db, adv = data.get("db") or {}, data.get("adv") or {}
    bots, chats = data.get("bots") or [], data.get("chats") or []
    settings = ctx.services.settings
    mfa = a.get("mfa") or a.get("totp_step") is not None
    items = [
        (ctx.t("setup.sum.admin"), f"{OK} {a.get('username', '?')}"),
        (ctx.t("setup.admin.password"), _yes(ctx, a.get("has_password"))),
        (ctx.t("setup.admin.mfa"), _yes(ctx, mfa)),
        (
            "LLM",
            f"{OK} {llm['model']}"
            if llm.get("model") and llm.get("tested")
            else f"{NO} {ctx.t('setup.sum.offline')}",
        ),
        (ctx.t("setup.sum.bots"), f"{OK} {len(bots)}" if bots else f"{NO} 0"),
        (ctx.t("setup.sum.chats"), f"{OK} {len(chats)}" if chats else f"{NO} 0"),
    ]
    if db.get("kind") == "postgresql" and db.get("migrated"):
        items.append(
            (
                ctx.t("setup.sum.db"),
                f"{OK} PostgreSQL {db.get('where', '')} ({ctx.t('setup.sum.restart')})",
            )
        )
    elif db.get("kind") == "postgresql":
        items.append((ctx.t("setup.sum.db"), f"{NO} PostgreSQL {ctx.t('setup.sum.not_migrated')}"))
    else:
        items.append(
            (ctx.t("setup.sum.db"), f"{OK} {'SQLite' if settings.sqlite_default else 'PostgreSQL'}")
        )
    if adv.get("redis_enc"):
        mark = NO if adv.get("redis_failed") else OK
        items.append(
            ("Redis", f"{mark} {adv.get('redis_where', '')} ({ctx.t('setup.sum.restart')})")
        )
    else:
        items.append(("Redis", "— " + ctx.t("setup.adv.redis_none")))
    items.append((ctx.t("setup.adv.monitoring"), _yes(ctx, adv.get("monitoring", True))))
    items.append(
        (ctx.t("setup.adv.backup"), ctx.t(f"setup.adv.backup.{adv.get('backup', 'daily')}"))
    )
    items.append((ctx.t("setup.adv.lang"), ctx.t(f"lang.name.{adv.get('lang', settings.lang)}")))
    return items


async def render_summary(ctx: Context, data: dict[str, Any]) -> View:
    view = View(title=ctx.t("setup.sum.title"))
    view.blocks.append(Fields(summary_items(ctx, data)))
    view.blocks.append(Text(ctx.t("setup.sum.intro")))
    view.blocks.extend(_take_flash(ctx))
    view.row(WIZ.choice(ctx, ctx.t("setup.sum.start"), "summary", "start"))
    view.row(Button(ctx.t("setup.reset"), action="setup.reset"))
    return view


async def choose_summary(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    return None if value == "start" else STAY


async def finish(ctx: Context, data: dict[str, Any]) -> View:
    applied = await wizard.apply(ctx.services, data, ctx.actor_label)
    ctx.audit_params.update(applied=applied.hot, restart=applied.restart)
    if (data.get("adv") or {}).get("lang") in i18n.LANGS:
        ctx.lang = data["adv"]["lang"]
    blocks: list[Any] = [
        Alert(
            "success",
            ctx.t("setup.started", bots=applied.fleet_bots, chats=applied.fleet_chats),
        )
    ]
    if applied.hot:
        names = ", ".join(ctx.t(f"setup.applied.{k}") for k in applied.hot)
        blocks.append(Text(ctx.t("setup.applied_now", items=names)))
    if applied.restart:
        names = ", ".join(ctx.t(f"setup.applied.{k}") for k in applied.restart)
        blocks.append(Alert("warning", ctx.t("setup.needs_restart", items=names)))
    return View(title=ctx.t("setup.sum.title"), blocks=blocks, edit=True)


WIZ = Dialog(
    "setup",
    steps=[
        Step("admin", render_admin, on_text=text_admin, on_choice=choose_admin, secret=True),
        Step("llm", render_llm, on_text=text_llm, on_choice=choose_llm, secret=True),
        Step("fleet", render_fleet, on_text=text_fleet, on_choice=choose_fleet, secret=True),
        Step("db", render_db, on_text=text_db, on_choice=choose_db, secret=True),
        Step("adv", render_adv, on_text=text_adv, on_choice=choose_adv, secret=True),
        Step("summary", render_summary, on_choice=choose_summary, secret=True),
    ],
    finish=finish,
    store=wizard.SettingsTableStore(),
)


# --- the command ----------------------------------------------------------------------------------


async def _initial(ctx: Context) -> dict[str, Any]:
    assert ctx.actor is not None
    try:
        info = await get_user(ctx.services, ctx.actor.username)
    except UserError:
        return {"admin": {"username": ctx.actor.username}}
    return {
        "admin": {
            "user_id": info.id,
            "username": info.username,
            "has_password": info.has_password,
            "mfa": info.mfa,
        }
    }


async def slack_pointer(ctx: Context) -> View:
    bot = await _admin_bot_username(ctx)
    where = f"@{bot}" if bot else ctx.t("setup.slack.the_admin_bot")
    view = View(
        title=ctx.t("setup.slack.title"), blocks=[Text(ctx.t("setup.slack.pointer", bot=where))]
    )
    if ctx.actor is not None and ctx.level >= 3:
        data = await _initial(ctx)
        view.blocks.insert(0, Fields(summary_items(ctx, data)[:3]))
        view.blocks.append(Text(ctx.t("setup.slack.check")))
    if bot:
        view.row(Button(ctx.t("setup.slack.open"), url=f"https://t.me/{bot}?start=setup"))
    return view


SETUP_CODE = Bootstrap("setup_code", codes.pending_code)
"""While a setup code waits (a fresh install, or `piyasa setup` run again), whoever holds
it may run /setup to become its admin; once it is redeemed, /setup is the admins' alone."""


@command("setup", role="admin", bootstrap=SETUP_CODE, order=30, args=(Arg("code", secret=True),))
async def setup(ctx: Context) -> View:
    if ctx.surface == "slack":
        return await slack_pointer(ctx)
    code = ctx.args.get("code", "")
    if not ctx.chat_private:
        if code:  # the group saw it: it must not work for anyone any more
            await codes.burn_setup_code(ctx.services)
            ctx.audit_params["outcome"] = "code_burned"
        bot = await _admin_bot_username(ctx)
        view = View(
            blocks=[Alert("warning", ctx.t("setup.group_refused", bot=f"@{bot}" if bot else ""))]
        )
        if bot:
            view.row(Button(ctx.t("setup.slack.open"), url=f"https://t.me/{bot}?start=setup"))
        return view
    if ctx.via_bootstrap:  # let in below admin by SETUP_CODE: only the code gets further
        if not code:
            return View(blocks=[Alert("info", ctx.t("setup.need_code", id=ctx.client.external_id))])
        result = await codes.redeem_setup_code(
            ctx.services, code, ctx.client.external_id, ctx.client.display_name
        )
        ctx.audit_params["outcome"] = result.reason or "linked"
        if not result.ok:
            return View(blocks=[Alert("error", ctx.t(f"setup.code.{result.reason}"))])
        ctx.actor = await identity.resolve(ctx.services, "telegram", ctx.client.external_id)
        ctx.target = result.username
        flash("success", "setup.code.ok", username=result.username)
        await pipeline.authorize(ctx, allow_bootstrap=False)  # the code's account: admin?
    if await WIZ.state_data(ctx) is not None and not code:
        flash("info", "setup.resumed")
    return await WIZ.start(ctx, await _initial(ctx))


WIZ.bind(setup, role="admin", private_only=True)


@setup.action("reset", role="admin", private_only=True)
async def reset(ctx: Context) -> View:
    if ctx.surface == "slack":
        return await slack_pointer(ctx)
    return await WIZ.reset(ctx, await _initial(ctx))
