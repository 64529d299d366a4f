"""`piyasa alerts list|ack|silence|test`: what the shell shows, and bad input refused
with the fix and nothing changed (both databases)."""

from __future__ import annotations

import argparse
import json

import pytest

from piyasa.admin.notify import destinations, emit
from piyasa.admin.notify import store as notify_store
from piyasa.cli import CommandError
from piyasa.clicmd import alerts as cli
from tests.notify.conftest import FakeChannel, critical


@pytest.fixture
def shell(notify, monkeypatch):  # type: ignore[no-untyped-def]
    """The CLI on the test's database (its settings), not the developer's environment."""
    svc, _sender = notify

    async def with_services(fn):  # type: ignore[no-untyped-def]
        return await fn(svc.services)

    monkeypatch.setattr("piyasa.clicmd.user._with_services", with_services)
    return svc


async def test_list_ack_and_silence(shell, capsys) -> None:
    emit(shell.services.extras, critical("database"))
    await shell.tick()
    assert await cli.run_list(argparse.Namespace(state="open", limit=50, json=True)) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(i["id"], i["state"], i["fingerprint"]) for i in data["items"]] == [
        (1, "open", "health:database")
    ]
    assert await cli.run_ack(argparse.Namespace(id=1)) == 0
    assert "#1 acknowledged" in capsys.readouterr().out
    await cli.run_list(argparse.Namespace(state="acked", limit=50, json=False))
    assert "acknowledged" in capsys.readouterr().out
    ns = argparse.Namespace(match=["source=fleet"], duration="2h", comment="deploy")
    assert await cli.run_silence(ns) == 0
    assert "silence #1: source=fleet until" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("match", "duration", "says"),
    [([], "2h", "at least one matcher"), (["source=fleet"], "", "needs an expiry")],
)
async def test_bad_silence_is_refused(shell, match, duration, says) -> None:
    with pytest.raises(CommandError, match=says):
        await cli.run_silence(argparse.Namespace(match=match, duration=duration, comment=""))
    assert await notify_store.silences(shell.services, shell.now()) == []


async def test_ack_of_nothing_and_test_of_unknown_channel(shell) -> None:
    with pytest.raises(CommandError, match="no notification #9"):
        await cli.run_ack(argparse.Namespace(id=9))
    with pytest.raises(CommandError, match="no channel named 'nope'"):
        await cli.run_test(argparse.Namespace(channel="nope"))


async def test_test_sends_to_a_configured_channel(shell, monkeypatch, capsys) -> None:
    await destinations.add_channel(
        shell.services, "hook", "webhook", {"url": "http://x"}, FakeChannel
    )
    monkeypatch.setattr("piyasa.admin.notify.service.default_channel_factory", FakeChannel)
    assert await cli.run_test(argparse.Namespace(channel="hook")) == 0
    assert [m.title for m in FakeChannel.sent["hook"]] == ["Piyasa test notification"]
