"""users.role and users.bulk: their rules live in the registry, so the pipeline refuses a
press that breaks them — from a non-admin, or carrying a value only another (step-up)
action may set — before anything changes, and audits it."""

from __future__ import annotations

from chatops import i18n
from piyasa.admin import users as svc
from tests.chatops.harness import PEOPLE, audit_count, next_audit, wait_answer


async def _state(services) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {n: (await svc.card(services, n)).role for n in ("user_viewer", "user_operator")}


async def test_users_role_and_bulk_refused_by_the_pipeline_changing_nothing(tg) -> None:
    viewer_id = tg.user_ids["viewer"]
    presses = [
        ("operator", "users.role", {"id": viewer_id, "role": "operator"}, "denied_role"),
        ("operator", "users.bulk", {"op": "lock", "sel": [viewer_id]}, "denied_role"),
        ("admin", "users.role", {"id": viewer_id, "role": "admin"}, "refused_param"),
        (
            "admin",
            "users.bulk",
            {"op": "role", "role": "admin", "sel": [viewer_id]},
            "refused_param",
        ),
        ("admin", "users.bulk", {"op": "delete", "sel": [viewer_id]}, "refused_param"),
    ]
    before = await _state(tg.services)
    for role, spec_id, params, result in presses:
        uid = PEOPLE[role][0]
        anchor = await tg.say(role, "/start")
        n = await audit_count(tg.services)
        token = await tg.surface.tokens.issue(
            spec_id=spec_id,
            surface="telegram",
            user=str(uid),
            chat=str(uid),
            params=params,
            confirmed=True,  # even a confirmed press
        )
        qid = await tg.sb.press_button(
            uid, uid, anchor["message_id"], token, forge=True, bot_id=tg.bot_id
        )
        answer = await wait_answer(tg.sb, qid)
        row = await next_audit(tg.services, n, action=spec_id)
        assert row.result == result, (role, spec_id, params)
        if result == "refused_param":
            assert answer.get("text") == i18n.t("en", "refuse.param")
        assert await _state(tg.services) == before, (role, spec_id, params)
        assert not (await svc.card(tg.services, "user_viewer")).locked


async def test_setup_is_listed_while_its_code_waits_and_only_to_admins_after(tg) -> None:
    """The bootstrap rule of /setup: the holder of a waiting setup code sees and runs it
    (and becomes its admin); once redeemed, viewers neither see nor run it."""
    from piyasa.admin.setup.codes import create_setup_code

    line = "/setup [CODE] —"
    assert line not in (await tg.say("viewer", "/help"))["text"]
    info = await svc.add_user(tg.services, "fresh_admin", "admin")
    code = await create_setup_code(tg.services, info.id)
    assert line in (await tg.say("unlinked", "/help"))["text"]
    assert line in (await tg.say("viewer", "/help"))["text"]
    n = await audit_count(tg.services)
    await tg.say("unlinked", f"/setup {code}")
    row = await next_audit(tg.services, n, action="setup")
    assert row.result == "ok" and row.params.get("via") == "setup_code"
    assert (await svc.card(tg.services, "fresh_admin")).username == "fresh_admin"
    whoami = await tg.say("unlinked", "/whoami")  # the sender is that admin now
    assert "fresh_admin" in whoami["text"]
    assert line not in (await tg.say("viewer", "/help"))["text"]
    n = await audit_count(tg.services)
    refused = await tg.say("viewer", "/setup")
    assert refused["text"].startswith("⛔") and "setup" not in refused["text"].lower()
    assert (await next_audit(tg.services, n, action="setup")).result == "denied_role"
