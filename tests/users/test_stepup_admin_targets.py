"""Step-up for every action against another admin (and bulk delete), declared so the
pipeline enforces it; a first TOTP enrolment from chat is announced to the admins.

A hijacked admin chat account used to lock out, demote or reset every other admin with a
confirmation alone. Telegram and Slack, SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses

import pyotp
import pytest

from chatops import i18n, pipeline
from chatops.commands import load_all
from chatops.context import Client, Context, Invocation
from piyasa.admin import audit, auth
from piyasa.admin import users as svc
from piyasa.admin.identity import resolve
from tests.chatops.harness import (
    ADMIN_GROUP,
    PEOPLE,
    audit_count,
    buttons,
    next_audit,
    wait_answer,
)
from tests.chatops.slack_server import dm_of, slack_text
from tests.users.helpers import private, slack_token, tap, token_for

NOT_ENROLLED = i18n.t("en", "stepup.not_enrolled")
# Actions that only show something: no change, so no step-up whoever the target is.
READ_ONLY = {"users.list", "users.card", "users.sessions", "users.delete"}


async def _other_admin(services) -> int:  # type: ignore[no-untyped-def]
    return (await svc.add_user(services, "boss2", "admin")).id


async def _press(tg, role: str, message: dict, label: str) -> str:  # type: ignore[no-untyped-def]
    return await tg.sb.press_button(
        PEOPLE[role][0],
        private(role),
        message["message_id"],
        token_for(message, label),
        bot_id=tg.bot_id,
    )


async def test_every_change_to_another_admin_needs_step_up(services, people) -> None:
    """The sweep: each users action that changes an account asks for a step-up when it
    targets another admin, and (unless always guarded) not for a viewer or oneself."""
    other = await _other_admin(services)
    registry = load_all()
    actor = await resolve(services, "telegram", str(PEOPLE["admin"][0]))
    changing = [
        s
        for s in registry.specs()
        if s.id.startswith("users.") and s.id not in READ_ONLY and s.id != "users.make_admin"
    ]
    assert {"users.lock", "users.reset_pw", "users.revoke", "users.bulk"} <= {
        s.id for s in changing
    }

    async def needs(spec_id: str, **params: object) -> bool:
        ctx = Context(
            services=services,
            registry=registry,
            surface="telegram",
            client=Client("telegram", str(PEOPLE["admin"][0])),
            actor=actor,
            lang="en",
            chat_id=str(ADMIN_GROUP),
            chat_private=False,
        )
        pipeline.bind(ctx, Invocation(spec_id, params=dict(params), is_press=True))
        return await pipeline.needs_step_up(ctx)

    for spec in changing:
        assert await needs(spec.id, id=other, sel=[other]), spec.id
        if not spec.step_up:
            assert not await needs(spec.id, id=people["viewer"], sel=[people["viewer"]]), spec.id
            assert not await needs(spec.id, id=people["admin"]), spec.id  # oneself
    assert await needs("users.bulk_delete", sel=[people["viewer"]])  # bulk delete: always
    ctx = Context(
        services=services,
        registry=registry,
        surface="telegram",
        client=Client("telegram", str(PEOPLE["admin"][0])),
        actor=actor,
        lang="en",
        chat_id=str(PEOPLE["admin"][0]),
        chat_private=True,
    )
    pipeline.bind(ctx, Invocation("linkcode", args_text="boss2"))
    assert await pipeline.needs_step_up(ctx)


async def test_locking_another_admin_needs_totp_telegram(tg) -> None:
    other = await _other_admin(tg.services)
    me = private("admin")
    card = await tg.say("admin", "/users boss2")
    card = await tap(tg, "admin", me, card, "👤 boss2")
    # no authenticator: refused before any confirmation, nothing changes
    qid = await _press(tg, "admin", card, "Lock")
    assert (await wait_answer(tg.sb, qid))["text"] == NOT_ENROLLED
    assert not (await svc.get_user(tg.services, "boss2")).locked
    rows = await audit.recent(tg.services, 5, action="users.lock")
    assert rows[0].result == "stepup_unavailable"
    # a viewer is locked with a confirmation alone, as before
    viewer = await tg.say("admin", "/users viewer")
    viewer = await tap(tg, "admin", me, viewer, "👤 user_viewer")
    confirm = await tap(tg, "admin", me, viewer, "Lock")
    done = await tap(tg, "admin", me, confirm, "Yes")
    assert "user_viewer is locked" in done["text"]
    # with an authenticator: the code first, then the confirmation, then the lock
    secret = await auth.enroll_totp(tg.services, tg.user_ids["admin"])
    qid = await _press(tg, "admin", card, "Lock")
    assert "authenticator" in (await wait_answer(tg.sb, qid))["text"]
    mark = tg.sb.mark()
    await tg.sb.send_user_message(me, me, pyotp.TOTP(secret).now(), bot_id=tg.bot_id)
    confirm = await tg.sb.wait_for_message(
        lambda m: "Yes" in str(buttons(m)), chat_id=me, after=mark, bot_id=tg.bot_id
    )
    done = await tap(tg, "admin", me, confirm, "Yes")
    assert "boss2 is locked" in done["text"]
    assert (await svc.get_user(tg.services, "boss2")).locked
    del other


async def test_bulk_touching_an_admin_needs_totp_telegram(tg) -> None:
    await _other_admin(tg.services)
    me = private("admin")
    msg = await tg.say("admin", "/users")
    msg = await tap(tg, "admin", me, msg, "Select")
    for name in ("boss2", "user_viewer"):
        msg = await tap(tg, "admin", me, msg, f"☐ {name}")
    for label in ("Lock", "→ viewer", "Delete"):
        qid = await _press(tg, "admin", msg, label)
        assert (await wait_answer(tg.sb, qid))["text"] == NOT_ENROLLED, label
    assert not (await svc.get_user(tg.services, "boss2")).locked
    assert (await svc.get_user(tg.services, "boss2")).role == "admin"


async def test_another_admin_needs_totp_slack(slack, slack_server) -> None:
    await _other_admin(slack.services)
    _, ack, _ = await slack.slash("U0ADMIN", "users boss2")
    _, url = await slack.press("U0ADMIN", slack_token(ack, "👤 boss2"))
    (card,) = await slack_server.wait_response(url)
    for label in ("Lock", "Reset password", "Force password change", "→ viewer"):
        _, url = await slack.press("U0ADMIN", slack_token(card, label))
        (refused,) = await slack_server.wait_response(url)
        assert NOT_ENROLLED in slack_text(refused), label
    _, ack, _ = await slack.slash("U0ADMIN", "linkcode boss2")
    assert NOT_ENROLLED in slack_text(ack)
    info = await svc.card(slack.services, "boss2")
    assert not info.locked and not info.must_change and info.role == "admin"


async def test_enrolment_is_announced_to_the_admins_telegram(tg) -> None:
    me = private("viewer")
    mark = tg.sb.mark()
    await tg.sb.send_user_message(me, me, "/mfa", bot_id=tg.bot_id)
    photo = await tg.sb.wait_for_message(lambda m: "photo" in m, chat_id=me, after=mark)
    seed = photo["caption"].rsplit(" ", 1)[1]
    mark, before = tg.sb.mark(), await audit_count(tg.services)
    ok = await tg.say("viewer", f"/mfa {pyotp.TOTP(seed).now()}")
    assert "is on" in ok["text"]
    note = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark, bot_id=tg.bot_id)
    assert "user_viewer turned on two-factor authentication from Telegram" in note["text"]
    assert "/users user_viewer" in note["text"] and seed not in note["text"]
    row = await next_audit(tg.services, before, action="mfa")
    while row.params.get("outcome") != "enabled":  # the QR request's row may land late
        row = await next_audit(tg.services, row.id, action="mfa")
    assert row.params["announced"] == 1


@pytest.fixture
def alert_channel(services):  # type: ignore[no-untyped-def]
    services.settings = dataclasses.replace(services.settings, slack_alert_channel="C0ALERTS")


async def test_enrolment_is_announced_to_the_admins_slack(
    alert_channel, slack, slack_server
) -> None:
    await slack.slash("U0VIEWER", "mfa", channel=dm_of("U0VIEWER"))
    seed = await _pending_seed(slack.services, "user_viewer")
    _, ack, _ = await slack.slash(
        "U0VIEWER", f"mfa {pyotp.TOTP(seed).now()}", channel=dm_of("U0VIEWER")
    )
    assert "is on" in slack_text(ack)
    posted = [m for m in slack_server.posted if m["channel"] == "C0ALERTS"]
    assert len(posted) == 1
    assert "user_viewer turned on two-factor authentication from Slack" in slack_text(posted[0])
    assert "/piyasa users user_viewer" in slack_text(posted[0])


async def _pending_seed(services, username: str) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from piyasa.db.models import User

    async with services.sessions() as s:
        enc = await s.scalar(select(User.totp_secret_encrypted).where(User.username == username))
    return services.box.decrypt(enc)
