"""The /setup command: the one-time code, who may run the wizard, the summary and
[Start system], and the Dialog that ties the steps together."""

from __future__ import annotations

from typing import Any

from chatops import i18n, pipeline
from chatops.commands.registry import Arg, Bootstrap, command
from chatops.commands.setup import account, adminchat, fleet, storage
from chatops.commands.setup.common import (
    DIALOG_NAME,
    NO,
    OK,
    admin_bot_username,
    choice,
    flash,
    take_flash,
    yes,
)
from chatops.context import Context
from chatops.dialogs import STAY, Dialog, Step
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.admin import identity
from piyasa.admin.setup import codes, wizard
from piyasa.admin.setup.dbswitch import Switched
from piyasa.admin.users import UserError, get_user

# --- step 6: summary ---------------------------------------------------------------------------


def summary_items(ctx: Context, data: dict[str, Any]) -> list[tuple[str, str]]:
    a, llm = data.get("admin") or {}, data.get("llm") or {}
    db, adv = data.get("db") or {}, data.get("adv") or {}
    bots, chats = data.get("bots") or [], data.get("chats") or []
    settings = ctx.services.settings
    mfa = a.get("mfa") or a.get("totp_step") is not None
    items = [
        (ctx.t("setup.sum.admin"), f"{OK} {a.get('username', '?')}"),
        (ctx.t("setup.admin.password"), yes(ctx, a.get("has_password"))),
        (ctx.t("setup.admin.mfa"), yes(ctx, mfa)),
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
                f"{OK} PostgreSQL {db.get('where', '')} ({ctx.t('setup.sum.at_start')})",
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
    items.append((ctx.t("setup.adv.monitoring"), yes(ctx, adv.get("monitoring", True))))
    items.append(
        (ctx.t("setup.adv.backup"), ctx.t(f"setup.adv.backup.{adv.get('backup', 'daily')}"))
    )
    items.append((ctx.t("setup.adv.lang"), ctx.t(f"lang.name.{adv.get('lang', settings.lang)}")))
    return items


async def render_summary(ctx: Context, data: dict[str, Any]) -> View:
    view = View(title=ctx.t("setup.sum.title"))
    view.blocks.append(Fields([*summary_items(ctx, data), await adminchat.summary_item(ctx)]))
    view.blocks.append(Text(ctx.t("setup.sum.intro")))
    view.blocks.extend(take_flash(ctx))
    view.row(choice(ctx, ctx.t("setup.sum.start"), "summary", "start"))
    view.row(Button(ctx.t("setup.reset"), action="setup.reset"))
    return view


async def choose_summary(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    return None if value == "start" else STAY


def switch_blocks(ctx: Context, switched: Switched) -> list[Any]:
    """Which database is live after [Start system], and where the old one is."""
    if not switched.ok:
        return [
            Alert(
                "error", ctx.t("setup.db.switch_failed", reason=switched.reason, live=switched.live)
            )
        ]
    blocks: list[Any] = [
        Alert(
            "success",
            ctx.t(
                "setup.db.switched",
                live=switched.live,
                fallback=switched.fallback,
                rows=switched.rows,
                tables=switched.tables,
            ),
        )
    ]
    if switched.env_overrides:
        blocks.append(Alert("warning", ctx.t("setup.db.env_overrides", live=switched.live)))
    return blocks


async def finish(ctx: Context, data: dict[str, Any]) -> View:
    ref = progress = None
    db = data.get("db") or {}
    if db.get("kind") == "postgresql" and db.get("migrated"):
        ref, progress = await storage.copy_progress(ctx, "setup.db.switching")
    applied = await wizard.apply(ctx.services, data, ctx.actor_label, progress=progress)
    if ref is not None:
        done = ctx.t("setup.db.switching", pct=100)
        await ctx.edit(ref, View(blocks=[Alert("info", done)]))
    ctx.audit_params.update(applied=applied.hot, restart=applied.restart)
    if applied.database is not None:
        ctx.audit_params["database"] = "switched" if applied.database.ok else "not_switched"
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
    if applied.database is not None:
        blocks.extend(switch_blocks(ctx, applied.database))
    return View(title=ctx.t("setup.sum.title"), blocks=blocks, edit=True)


WIZ = Dialog(
    DIALOG_NAME,
    steps=[
        Step(
            "admin",
            account.render_admin,
            on_text=account.text_admin,
            on_choice=account.choose_admin,
            secret=True,
        ),
        Step(
            "llm",
            account.render_llm,
            on_text=account.text_llm,
            on_choice=account.choose_llm,
            secret=True,
        ),
        Step(
            "fleet",
            fleet.render_fleet,
            on_text=fleet.text_fleet,
            on_choice=fleet.choose_fleet,
            secret=True,
        ),
        Step(
            "db",
            storage.render_db,
            on_text=storage.text_db,
            on_choice=storage.choose_db,
            secret=True,
        ),
        Step(
            "adv",
            storage.render_adv,
            on_text=storage.text_adv,
            on_choice=storage.choose_adv,
            secret=True,
        ),
        Step(adminchat.STEP, adminchat.render_adminchat, on_choice=adminchat.choose_adminchat),
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
    bot = await admin_bot_username(ctx)
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


def _code_alert(ctx: Context, result: codes.Redeemed) -> Alert:
    """Why the typed code did not link the sender (throttled: with the minutes to wait)."""
    return Alert("error", ctx.t(f"setup.code.{result.reason}", minutes=result.retry_in_min))


async def _refuse_in_group(ctx: Context, code: str) -> View:
    """Setup only runs in private. A code typed here (its message is deleted as a secret
    argument) is voided only when it is the live one; anything else changes nothing and
    counts as a wrong try for the sender and this chat."""
    blocks: list[Any] = []
    if code:
        result = await codes.burn_seen_code(ctx.services, code, ctx.client.external_id, ctx.chat_id)
        ctx.audit_params["outcome"] = "code_burned" if result.reason == "burned" else result.reason
        if result.reason in ("burned", "throttled"):
            blocks.append(_code_alert(ctx, result))
    bot = await admin_bot_username(ctx)
    blocks.append(Alert("warning", ctx.t("setup.group_refused", bot=f"@{bot}" if bot else "")))
    view = View(blocks=blocks)
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
        return await _refuse_in_group(ctx, code)
    if ctx.via_bootstrap:  # let in below admin by SETUP_CODE: only the code gets further
        if not code:
            return View(blocks=[Alert("info", ctx.t("setup.need_code", id=ctx.client.external_id))])
        result = await codes.redeem_setup_code(
            ctx.services,
            code,
            ctx.client.external_id,
            ctx.client.display_name,
            chat_id=ctx.chat_id,
        )
        ctx.audit_params["outcome"] = result.reason or "linked"
        if not result.ok:
            return View(blocks=[_code_alert(ctx, result)])
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


@setup.action("adminchat", role="admin", private_only=True)
async def adopt_admin_chat(ctx: Context) -> View:
    """[Yes]/[No] to "Use <group> as the admin chat?" (see :mod:`.adminchat`)."""
    return await adminchat.answer(ctx, WIZ)
