"""`/health` on Telegram: the overview, details, who sees quick actions, and live mode."""

from __future__ import annotations

from chatops.commands.health import signature
from tests.chatops.harness import ADMIN_GROUP, wait_answer
from tests.health_chat.conftest import State, button, kb
from tests.waiting import finishes


async def test_overview_lines_details_and_actions_by_role(hw) -> None:
    reply = await hw.say("viewer", "/health", group=True)
    text = reply["text"]
    assert text.startswith("🟢 Health: all systems operational")
    assert "🟢 Database — database is healthy" in text and "🟢 Redis — redis is healthy" in text
    labels = list(kb(reply))
    assert {"🔎 Database", "🔎 Redis", "🔄 Refresh", "📡 Live"} <= set(labels)
    assert "⚙️ Quick actions" not in labels  # a viewer is never offered what they may not run
    assert "⚙️ Quick actions" in kb(await hw.say("operator", "/health", group=True))

    mark = await hw.press("viewer", ADMIN_GROUP, reply, button(reply, "🔎 Database"))
    details = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, edits=True, after=mark)
    assert details["message_id"] == reply["message_id"]  # the same message, edited
    assert (
        "State: 🟢 healthy" in details["text"] and "Summary: database is healthy" in details["text"]
    )
    # no quick action for a viewer; the screen's ❓ Help (h17ctx)
    assert list(kb(details)) == ["« Health", "❓ Help"]

    hw.probes["redis"].state = State.CRITICAL
    await hw.health.run_all_now()
    op = await hw.say("operator", "/health", group=True)
    assert op["text"].startswith("🔴 Health: major problem")
    mark = await hw.press("operator", ADMIN_GROUP, op, button(op, "🔎 Redis"))
    details = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, edits=True, after=mark)
    assert "State: 🔴 critical" in details["text"]
    assert "🩺 Run all checks now" in kb(details)


async def test_live_mode_edits_only_when_something_changed(hw) -> None:
    reply = await hw.say("viewer", "/health", group=True)
    edits_before = len(hw.sb.calls("editMessageText"))
    mark = await hw.press("viewer", ADMIN_GROUP, reply, button(reply, "📡 Live"))
    live_msg = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, edits=True, after=mark)
    assert "Live: updated when something changes" in live_msg["text"]
    assert "⏹ Stop live" in kb(live_msg)
    session = await finishes(hw.live.wait_for_session(), "a live view session")

    # Ten looks at an unchanged snapshot (fresh rounds keep coming): not one edit.
    rounds = hw.health.snapshot().sequence
    await finishes(
        hw.live.wait_ticks(session, session.ticks + 10), "ten more looks by the live view"
    )
    assert hw.health.snapshot().sequence > rounds
    assert len(hw.sb.calls("editMessageText")) == edits_before + 1
    assert session.edits == 0

    # A change shows up in the next look, once, with the keyboard still there.
    mark = hw.sb.mark()
    hw.probes["redis"].state = State.CRITICAL
    await hw.health.run_all_now()
    changed = await hw.sb.wait_for_message(
        lambda m: m["message_id"] == reply["message_id"],
        chat_id=ADMIN_GROUP,
        edits=True,
        after=mark,
    )
    assert "🔴 Redis — redis is critical" in changed["text"]
    assert "⏹ Stop live" in kb(changed) and "🔎 Redis" in kb(changed)
    await finishes(
        hw.live.wait_ticks(session, session.ticks + 10), "ten more looks by the live view"
    )
    assert session.edits == 1

    # Stop: the message leaves live mode; nothing edits it afterwards.
    mark = await hw.press("viewer", ADMIN_GROUP, changed, button(changed, "⏹ Stop live"))
    stopped = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, edits=True, after=mark)
    assert "Live view ended" in stopped["text"] and "📡 Live" in kb(stopped)
    assert not hw.live.sessions
    edits = hw.sb.calls("editMessageText")
    assert all(c["ok"] for c in edits), [c["description"] for c in edits if not c["ok"]]


async def test_live_mode_ends_by_itself_and_never_repeats_a_message(hw) -> None:
    hw.live.duration_s = 0.6
    reply = await hw.say("viewer", "/health live", group=True)
    assert "Live: updated" in reply["text"]
    session = await finishes(hw.live.wait_for_session(), "a live view session")
    mark = hw.sb.mark()
    await finishes(session.task, "the live view to end by itself")
    ended = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, edits=True, after=mark)
    assert "Live view ended" in ended["text"] and "📡 Live" in kb(ended)
    assert not [c for c in hw.sb.calls("editMessageText") if not c["ok"]]


def test_signature_ignores_figures_of_healthy_components() -> None:
    from datetime import UTC, datetime

    from piyasa.admin.health import Reading, Snapshot

    def snap(summary: str, state: State = State.HEALTHY) -> Snapshot:
        r = Reading("database", state, summary)
        return Snapshot(state, {"database": r}, datetime.now(UTC))

    assert signature(snap("12 ms")) == signature(snap("14 ms"))
    assert signature(snap("12 ms")) != signature(snap("900 ms", State.CRITICAL))
    a, b = snap("unreachable (A)", State.CRITICAL), snap("unreachable (B)", State.CRITICAL)
    assert signature(a) != signature(b)


async def test_a_stale_token_on_a_live_view_is_refused_like_any(hw) -> None:
    reply = await hw.say("viewer", "/health", group=True)
    qid = await hw.sb.press_button(
        810003, ADMIN_GROUP, reply["message_id"], button(reply, "📡 Live"), bot_id=None
    )
    await wait_answer(hw.sb, qid)
    # another user presses the viewer's button: refused, the message is not touched
    before = len(hw.sb.calls("editMessageText"))
    qid = await hw.sb.press_button(
        810004, ADMIN_GROUP, reply["message_id"], button(reply, "🔎 Redis"), forge=True
    )
    answer = await wait_answer(hw.sb, qid)
    assert "expired or is not yours" in (answer["text"] or "")
    assert len(hw.sb.calls("editMessageText")) == before
