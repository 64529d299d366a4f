"""/adduser: the add-user dialog (name, role, password, must-change, MFA) and Create."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from chatops import dialogs, handover
from chatops.commands.registry import command
from chatops.commands.users.common import _prefix, actor_of, error_view
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.admin import auth, issue, passwords
from piyasa.admin import users as svc
from piyasa.db.models import ROLES


async def _ask_username(ctx: Context, data: dict[str, Any]) -> View:
    return View(blocks=[Text(ctx.t("users.add.ask_username"))])


async def _on_username(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    try:
        name = svc.validate_username(text)
    except svc.UserError:
        return "users.add.bad_username"
    if await svc.user_ids(ctx.services, [name]):
        return "users.add.taken"
    data["username"] = name
    return None


async def _ask_role(ctx: Context, data: dict[str, Any]) -> View:
    return View(
        blocks=[Text(ctx.t("users.add.ask_role", username=data.get("username", "")))],
        buttons=[[wizard.choice(ctx, ctx.t(f"role.{r}"), "role", r) for r in ROLES]],
    )


async def _on_role(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    if value not in ROLES:
        return "users.add.bad_choice"
    data["role"] = value
    return None


async def _ask_password(ctx: Context, data: dict[str, Any]) -> View:
    key = "users.add.ask_password_group" if ctx.input_exposed else "users.add.ask_password"
    return View(
        blocks=[Text(ctx.t(key))],
        buttons=[[wizard.choice(ctx, ctx.t("users.add.generate"), "password", "generate")]],
    )


async def _on_password_choice(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    if value != "generate":
        return "users.add.bad_choice"
    data["password"] = "generate"
    data.pop("password_hash", None)
    return None


async def _on_password_text(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    # The dialog tried to delete the message holding it (a secret step): say what happened.
    # (A Slack slash command's text is seen by nobody else, even in a channel.)
    if ctx.input_exposed:
        return (
            "users.add.password_visible" if ctx.secret_visible else "users.add.password_not_private"
        )
    problem = passwords.problem(text, data.get("username"))
    if problem:
        return f"users.err.password_{problem}"
    data["password"] = "typed"
    data["password_hash"] = auth.hash_password(text)  # the password itself is never stored
    return None


async def _ask_must_change(ctx: Context, data: dict[str, Any]) -> View:
    return View(
        blocks=[Text(ctx.t("users.add.ask_must_change"))],
        buttons=[
            [
                wizard.choice(ctx, ctx.t("yes"), "must_change", "yes"),
                wizard.choice(ctx, ctx.t("no"), "must_change", "no"),
            ]
        ],
    )


async def _on_must_change(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    if value not in ("yes", "no"):
        return "users.add.bad_choice"
    data["must_change"] = value == "yes"
    return None


async def _ask_mfa(ctx: Context, data: dict[str, Any]) -> View:
    return View(
        blocks=[Text(ctx.t("users.add.ask_mfa"))],
        buttons=[
            [
                wizard.choice(ctx, ctx.t("users.add.mfa_now"), "mfa", "now"),
                wizard.choice(ctx, ctx.t("users.add.mfa_later"), "mfa", "later"),
            ]
        ],
    )


async def _on_mfa(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    if value not in ("now", "later"):
        return "users.add.bad_choice"
    data["mfa"] = value
    return None


async def _summary(ctx: Context, data: dict[str, Any]) -> View:
    t = ctx.t
    role = data.get("role", "viewer")
    action = "adduser.create_admin" if role == "admin" else "adduser.create"
    pw = t("users.add.pw_generated" if data.get("password") == "generate" else "users.add.pw_typed")
    return View(
        blocks=[
            Fields(
                [
                    (t("users.f.user"), data.get("username", "")),
                    (t("users.f.role"), t(f"role.{role}")),
                    (t("users.f.password"), pw),
                    (t("users.f.must_change"), t("yes" if data.get("must_change") else "no")),
                    (t("users.f.mfa"), t(f"users.add.mfa_{data.get('mfa', 'later')}")),
                ]
            )
        ],
        buttons=[[Button(t("users.add.create"), action, style="primary")]],
    )


async def _finish(ctx: Context, data: dict[str, Any]) -> View:  # never reached: Create does it
    return await _summary(ctx, data)


wizard = dialogs.Dialog(
    "adduser",
    steps=[
        dialogs.Step("username", _ask_username, on_text=_on_username),
        dialogs.Step("role", _ask_role, on_choice=_on_role),
        dialogs.Step(
            "password",
            _ask_password,
            on_text=_on_password_text,
            on_choice=_on_password_choice,
            secret=True,
        ),
        dialogs.Step("must_change", _ask_must_change, on_choice=_on_must_change),
        dialogs.Step("mfa", _ask_mfa, on_choice=_on_mfa),
        dialogs.Step("summary", _summary),
    ],
    finish=_finish,
)


@command("adduser", role="admin", order=31)
async def adduser(ctx: Context) -> View:
    """Add a user step by step (Back/Cancel); ends with a one-time link code."""
    return await wizard.start(ctx)


wizard.bind(adduser)


async def _create(ctx: Context, admin: bool) -> View | None:
    state = await dialogs.active(ctx)
    if not state or state.get("dialog") != "adduser" or state.get("step") != len(wizard.steps) - 1:
        return View(blocks=[Alert("error", ctx.t("dialog.gone"))])
    data = state["data"]
    if (data.get("role") == "admin") != admin:
        return View(blocks=[Alert("error", ctx.t("dialog.gone"))])
    mfa = data.get("mfa") == "now"

    def create() -> Awaitable[issue.Issued]:
        return issue.new_user(
            ctx.services,
            actor_of(ctx),
            data["username"],
            data["role"],
            password_hash=data.get("password_hash"),
            generate_password=data.get("password") == "generate",
            must_change=bool(data.get("must_change")),
            mfa=mfa,
        )

    def show(i: issue.Issued) -> View:
        t, code = ctx.t, i.secret
        role = t(f"role.{data['role']}")
        blocks: list[Any] = [
            Alert("success", t("users.add.done", username=i.username, role=role)),
            Text(t("users.add.link_code")),
            Text(code, style="code"),
            Text(t("linkcode.how", username=i.username, code=code)),
        ]
        if i.extra.get("password"):
            blocks += [Text(t("users.add.temp_password")), Text(i.extra["password"], style="code")]
        if mfa:
            blocks.append(Text(t("users.add.mfa_next", mfa=f"{_prefix(ctx)}mfa")))
        return View(title=t("users.add.done_title"), blocks=blocks)

    try:
        view = await handover.hand_over(ctx, create, show)
    except svc.UserError as exc:
        return error_view(ctx, exc)
    await dialogs.cancel_active(ctx)
    return view


@adduser.action("create")
async def adduser_create(ctx: Context) -> View | None:
    return await _create(ctx, admin=False)


@adduser.action("create_admin", step_up=True)
async def adduser_create_admin(ctx: Context) -> View | None:
    return await _create(ctx, admin=True)


# -- self service: /mfa and /password -----------------------------------------------------------
