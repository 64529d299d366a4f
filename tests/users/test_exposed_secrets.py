"""Secrets typed where they stay visible (Telegram sandbox; SQLite and PostgreSQL).

In the test world the admin bot is a plain member of the admin group, so it cannot delete
what people type there — as in a real group where nobody made it an admin. The bot used
to say "I deleted your message" anyway and left the typed password readable; now it says
the truth, treats the secret as exposed (refused, and a current password must be changed),
and `piyasa check` and `/health` warn that the bot lacks the delete right.
"""

from __future__ import annotations

from chatops import i18n
from piyasa.admin import passwords
from piyasa.admin import users as svc
from piyasa.admin.health import HealthService
from piyasa.admin.health.model import State
from piyasa.admin.setup.checks import connection_checks
from tests.chatops.harness import ADMIN_GROUP, PEOPLE, audit_count, next_audit
from tests.chatops.slack_server import dm_of, slack_text
from tests.users.helpers import answer_in_group, tap

OLD = "viewers-own-passphrase-9"
NEW = "new-one-typed-in-group-7"


async def _typed_in_group(tg, role: str, text: str) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    """``role`` types ``text`` in the admin group: (their message, the bot's answer)."""
    mark = tg.sb.mark()
    sent = await tg.sb.send_user_message(PEOPLE[role][0], ADMIN_GROUP, text)
    reply = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, bot_id=tg.bot_id, after=mark)
    return sent, reply


async def test_password_typed_in_a_group_the_bot_cannot_clean(tg) -> None:
    await svc.set_password(tg.services, svc.CLI, "user_viewer", OLD)
    mark = await audit_count(tg.services)
    sent, reply = await _typed_in_group(tg, "viewer", f"/password {OLD} {NEW}")
    cmd = "/password"
    assert reply["text"] == "⛔ " + i18n.t("en", "users.password.exposed_visible", cmd=cmd)
    assert "deleted your message" not in reply["text"]
    assert (ADMIN_GROUP, sent["message_id"]) not in tg.sb.deleted  # it really is still there
    card = await svc.card(tg.services, "user_viewer")
    assert card.must_change  # the exposed password must be changed
    assert not (await passwords.check_login(tg.services, "user_viewer", NEW)).ok  # never set
    row = await next_audit(tg.services, mark, action="password")
    assert row.result == "refused_secret_exposed" and row.params["forced_change"] is True
    assert OLD not in str(row.params) and NEW not in str(row.params)


async def test_password_typed_in_a_group_the_bot_cleans(tg) -> None:
    tg.sb.set_admin(ADMIN_GROUP, tg.bot_id)  # now it may delete what others type
    await svc.set_password(tg.services, svc.CLI, "user_viewer", OLD)
    sent, reply = await _typed_in_group(tg, "viewer", f"/password {OLD} {NEW}")
    assert reply["text"] == "⛔ " + i18n.t("en", "users.password.exposed_seen", cmd="/password")
    assert (ADMIN_GROUP, sent["message_id"]) in tg.sb.deleted
    assert (await svc.card(tg.services, "user_viewer")).must_change
    # other private-only secrets typed in the group: refused, truthfully
    tg.sb.set_admin(ADMIN_GROUP, tg.bot_id, admin=False)
    _, reply = await _typed_in_group(tg, "viewer", "/mfa 123456")
    assert reply["text"] == "⛔ " + i18n.t("en", "refuse.secret_visible")


async def test_add_user_password_typed_in_the_group_is_not_claimed_deleted(tg) -> None:
    step = await tg.say("admin", "/adduser", group=True)
    answer, step = await answer_in_group(tg, "admin", "newbie")  # a reply to its prompt
    await tap(tg, "admin", ADMIN_GROUP, step, "operator")
    prompted = answer["reply_to_message"]["message_id"]  # the password step asks anew
    sent, reply = await answer_in_group(tg, "admin", "Kırmızı-balık-uçar-7", after=prompted)
    assert i18n.t("en", "users.add.password_visible") in reply["text"]
    assert "I deleted your message" not in reply["text"] and "Step 3/6" in reply["text"]
    assert (ADMIN_GROUP, sent["message_id"]) not in tg.sb.deleted


async def test_piyasa_check_and_health_warn_without_the_delete_right(tg) -> None:
    from piyasa.admin import admin_chats

    checks = {c.name: c for c in await connection_checks(tg.services.settings, tg.services)}
    chats = checks["admin_chats"]
    assert chats.state == State.WARNING and str(ADMIN_GROUP) in chats.summary
    assert "plain member" in chats.summary and "'Delete messages'" in chats.fix
    tg.services.extras["health"] = HealthService(tg.services, probes=[], record_stop=False)
    warning = i18n.t(
        "en",
        "health.admin_chat.cannot_delete",
        chat=ADMIN_GROUP,
        why=i18n.t("en", "health.admin_chat.not_admin"),
    )
    reply = await tg.say("viewer", "/health")
    assert warning in reply["text"]
    tg.sb.set_admin(ADMIN_GROUP, tg.bot_id)
    checks = {c.name: c for c in await connection_checks(tg.services.settings, tg.services)}
    assert checks["admin_chats"].state == State.HEALTHY
    await tg.services.cache.delete(admin_chats.CACHE_KEY)  # /health re-reads within a minute
    reply = await tg.say("viewer", "/health")
    assert "cannot delete messages" not in reply["text"]


async def test_health_warns_on_slack_too(tg, slack_server) -> None:
    from tests.chatops.conftest import start_slack

    tg.services.extras["health"] = HealthService(tg.services, probes=[], record_stop=False)
    async for slack, _surface in start_slack(tg.services, slack_server):
        _, ack, _ = await slack.slash("U0VIEWER", "health")
        assert f"cannot delete messages in admin chat {ADMIN_GROUP}" in slack_text(ack)
        # a slash command's text is never shown in a Slack channel: nothing is exposed, but
        # /password is private-only, so in a channel it is refused (pointing to the app's
        # DM) and changes nothing; in the DM it works
        await svc.set_password(tg.services, svc.CLI, "user_viewer", OLD)
        _, ack, _ = await slack.slash("U0VIEWER", f"password {OLD} {NEW}")
        where = i18n.t("en", "refuse.private_where.slack")
        assert i18n.t("en", "refuse.private_only", where=where) in slack_text(ack)
        assert (await passwords.check_login(tg.services, "user_viewer", OLD)).ok
        assert not (await svc.card(tg.services, "user_viewer")).must_change
        _, ack, _ = await slack.slash(
            "U0VIEWER", f"password {OLD} {NEW}", channel=dm_of("U0VIEWER")
        )
        assert i18n.t("en", "users.password.changed") in slack_text(ack)
        assert not (await svc.card(tg.services, "user_viewer")).must_change
