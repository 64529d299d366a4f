"""Wizard steps 1 and 2: the admin account (password, two-factor) and the LLM."""

from __future__ import annotations

import re
from typing import Any

from chatops.commands.setup.common import NO, choice, flash, log, problem, take_flash, yes
from chatops.context import Context
from chatops.dialogs import STAY
from chatops.views import Fields, Image, Text, View
from piyasa.admin import auth, passwords
from piyasa.admin.setup import verify, wizard
from piyasa.admin.users import MIN_PASSWORD_LEN
from piyasa.config import mask

MAX_MODEL_BUTTONS = 12

# --- step 1: admin account and MFA ---------------------------------------------------------


async def render_admin(ctx: Context, data: dict[str, Any]) -> View:
    a = data.setdefault("admin", {})
    view = View(title=ctx.t("setup.admin.title"))
    view.blocks.append(
        Fields(
            [
                (ctx.t("setup.admin.username"), a.get("username", "?")),
                (ctx.t("setup.admin.password"), yes(ctx, a.get("has_password"))),
                (ctx.t("setup.admin.mfa"), yes(ctx, a.get("mfa") or a.get("totp_step"))),
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
    view.blocks.extend(take_flash(ctx))
    row = []
    if not a.get("has_password"):
        row.append(choice(ctx, ctx.t("setup.admin.set_password"), "admin", "password"))
    if not (a.get("mfa") or a.get("totp_step") is not None):
        row.append(choice(ctx, ctx.t("setup.admin.enable_mfa"), "admin", "mfa"))
    view.row(*row)
    view.row(choice(ctx, ctx.t("setup.next"), "admin", "next"))
    return view


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
    view.blocks.extend(take_flash(ctx))
    models = llm.get("models") or []
    if models:
        view.blocks.append(Text(ctx.t("setup.llm.choose_model", n=len(models))))
        picks = verify.chat_models_first(models)[:MAX_MODEL_BUTTONS]
        buttons = [choice(ctx, m, "llm", f"model:{m}") for m in picks]
        for i in range(0, len(buttons), 2):
            view.row(*buttons[i : i + 2])
    row = []
    if llm.get("key_enc"):
        label = "setup.try_again" if llm.get("failed") else "setup.llm.test"
        row.append(choice(ctx, ctx.t(label), "llm", "test"))
    if llm.get("phase") == "base_url" or base:
        row.append(choice(ctx, ctx.t("setup.llm.use_openai"), "llm", "default"))
    else:
        row.append(choice(ctx, ctx.t("setup.llm.other_provider"), "llm", "base_url"))
    view.row(*row)
    last = [choice(ctx, ctx.t("setup.later"), "llm", "skip")]
    if llm.get("model") and llm.get("tested"):
        last.insert(0, choice(ctx, ctx.t("setup.next"), "llm", "next"))
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
        flash("error", "setup.raw", text=problem(ctx, "llm", outcome, base=base))


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
