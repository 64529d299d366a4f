"""Every registered command and button action x every role x both surfaces: each refuses
every role below its requirement, with a refusal that says nothing about the command."""

from __future__ import annotations

import pytest

from chatops import i18n
from chatops.commands import load_all
from chatops.commands.registry import Action, Command, Spec
from tests.chatops.harness import (
    LEVEL,
    PEOPLE,
    ROLE_NAMES,
    audit_count,
    buttons,
    next_audit,
    wait_answer,
)
from tests.chatops.slack_server import slack_buttons, slack_text

REGISTRY = load_all()
DENIAL = {"unlinked": "unlinked", "locked": "locked"}
SPECS = list(REGISTRY.specs())


def expected_refusal(role: str, surface: str) -> str:
    prefix = "/piyasa " if surface == "slack" else "/"
    key = {"unlinked": "refuse.unlinked", "locked": "refuse.locked"}.get(role, "refuse.denied")
    return i18n.t(
        "en",
        key,
        help_cmd=f"{prefix}help",
        link_cmd=f"{prefix}link",
        surface=surface.capitalize(),
        id=PEOPLE[role][0 if surface == "telegram" else 1],
    )


def typed(spec: Spec) -> str:
    args = " ".join("x" if not a.choices else a.choices[0] for a in spec.args if a.required)
    return f"{spec.id} {args}".strip()


def refused(role: str, spec: Spec) -> bool:
    return spec.level > LEVEL[role] or (role == "locked" and spec.level > 0)


async def last_result(services, before: int, spec: Spec) -> str:  # type: ignore[no-untyped-def]
    return (await next_audit(services, before, action=spec.id)).result


def test_sweep_covers_everything() -> None:
    assert {s.id for s in SPECS} >= {"help", "whoami", "linkcode", "lang.set"}
    assert all(isinstance(s, Command | Action) for s in SPECS)


@pytest.mark.parametrize("role", ROLE_NAMES)
async def test_telegram_refuses_below_requirement(tg, role: str) -> None:
    uid = PEOPLE[role][0]
    want = expected_refusal(role, "telegram")
    problems = []
    anchor = await tg.say(role, "/start")  # a message of the bot to hang forged presses on
    for spec in SPECS:
        n = await audit_count(tg.services)
        if isinstance(spec, Command):
            reply = await tg.say(role, "/" + typed(spec))
            result = await last_result(tg.services, n, spec)
            if refused(role, spec):
                if reply["text"] != f"⛔ {want}" or buttons(reply):
                    problems.append(f"/{spec.id}: {reply['text']!r}")
                if result != f"denied_{DENIAL.get(role, 'role')}":
                    problems.append(f"/{spec.id}: audit says {result}")
            elif result.startswith("denied"):
                problems.append(f"/{spec.id} refused although allowed")
        else:
            # A button rendered for this user earlier (e.g. before a demotion or a lock).
            token = await tg.surface.tokens.issue(
                spec_id=spec.id,
                surface="telegram",
                user=str(uid),
                chat=str(uid),
                params={"code": "en"},
            )
            before = len(tg.sb.calls("editMessageText")) + len(tg.sb.calls("sendMessage"))
            qid = await tg.sb.press_button(
                uid, uid, anchor["message_id"], token, forge=True, bot_id=tg.bot_id
            )
            answer = await wait_answer(tg.sb, qid)
            result = await last_result(tg.services, n, spec)
            after = len(tg.sb.calls("editMessageText")) + len(tg.sb.calls("sendMessage"))
            if refused(role, spec):
                if (answer.get("text") or "") != want[:200] or after != before:
                    problems.append(f"{spec.id}: {answer} changed={after - before}")
                if result != f"denied_{DENIAL.get(role, 'role')}":
                    problems.append(f"{spec.id}: audit says {result}")
            elif result.startswith("denied"):
                problems.append(f"{spec.id} press refused although allowed")
    assert not problems, problems


@pytest.mark.parametrize("role", ROLE_NAMES)
async def test_slack_refuses_below_requirement(slack, slack_server, role: str) -> None:
    sid = PEOPLE[role][1]
    want = expected_refusal(role, "slack")
    problems = []
    for spec in SPECS:
        n = await audit_count(slack.services)
        if isinstance(spec, Command):
            status, ack, _url = await slack.slash(sid, typed(spec))
            text = slack_text(ack)
            assert status == 200
            result = await last_result(slack.services, n, spec)
            if refused(role, spec):
                if result != f"denied_{DENIAL.get(role, 'role')}":
                    problems.append(f"{spec.id}: audit says {result}")
                if want.replace("<", "&lt;") not in text or slack_buttons(ack):
                    problems.append(f"{spec.id}: {text!r}")
                if spec.id in text.split(want)[0]:
                    problems.append(f"{spec.id}: refusal names the command")
            elif result.startswith("denied"):
                problems.append(f"{spec.id} refused although allowed")
        else:
            token = await slack.surface_tokens.issue(
                spec_id=spec.id, surface="slack", user=sid, chat="C0OPS", params={"code": "en"}
            )
            status, url = await slack.press(sid, token)
            assert status == 200
            (answer,) = await slack_server.wait_response(url)
            result = await last_result(slack.services, n, spec)
            if refused(role, spec):
                if result != f"denied_{DENIAL.get(role, 'role')}":
                    problems.append(f"{spec.id}: audit says {result}")
                if want not in slack_text(answer) or answer.get("replace_original"):
                    problems.append(f"{spec.id}: {answer}")
            elif result.startswith("denied"):
                problems.append(f"{spec.id} press refused although allowed")
    assert not problems, problems
