"""`piyasa up` on embedded defaults: serves, migrates, runs the sandbox, stops cleanly.

Each test here starts its own `piyasa up`, on purpose: what they check is a first start on
an empty data dir (the migrations, the sandbox notice), a second start on a current schema,
and how the process stops on SIGTERM and SIGINT. A shared process could show none of that.
"""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.procs import PiyasaProcess, base_env, run_cli
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def _wait_for_fleet_chatter(proc: PiyasaProcess) -> None:
    """Every demo group gets messages from the fleet's bots (not from the admin bot)."""
    from piyasa.sandbox.demo import FLEET, GROUPS

    fleet_ids = {int(token.split(":")[0]) for token, *_ in FLEET}
    waiting = {chat_id for chat_id, *_ in GROUPS}

    def every_group_heard_the_fleet() -> bool:
        for chat_id in list(waiting):
            messages = proc.sandbox_api(f"chats/{chat_id}/messages")["messages"]
            if any((m.get("from") or {}).get("id") in fleet_ids for m in messages):
                waiting.discard(chat_id)
        return not waiting

    wait_until(
        every_group_heard_the_fleet,
        "a fleet message in every demo group",
        interval=0.5,
        output=lambda: f"groups still without one: {sorted(waiting)}",
    )


def test_up_without_tokens_serves_healthz_and_stops_cleanly(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data")
    proc = PiyasaProcess(["up"], env, tmp_path / "up.log")
    try:
        proc.wait_http("/healthz", 200)
        proc.wait_http("/readyz", 200)  # every part started
        with urllib.request.urlopen(proc.http_url + "/readyz") as resp:
            assert json.load(resp)["status"] == "ready"
        out = proc.output()
        assert "applied migrations empty -> " in out
        assert "Telegram sandbox (no PIYASA_ADMIN_BOT_TOKEN configured)" in out
        assert f"http://127.0.0.1:{env['PIYASA_SANDBOX_PORT']}" in out
        anonymous = f"http://127.0.0.1:{env['PIYASA_SANDBOX_PORT']}/sandbox/api/state"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(anonymous)
        assert refused.value.code == 401  # the demo admin's chats need the run's key
        assert len(proc.sandbox_api("state")["bots"]) >= 5
        _wait_for_fleet_chatter(proc)
    finally:
        code = proc.stop(signal.SIGTERM)
    assert code == 0, proc.output()
    assert "Stopped." in proc.output()
    assert "Traceback" not in proc.output()


def test_second_start_finds_schema_current_and_sigint_stops(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data")
    assert run_cli(["migrate"], env).returncode == 0  # the configured database
    first = PiyasaProcess(["up", "--sandbox"], env, tmp_path / "up1.log")
    try:
        first.wait_http("/readyz")
        assert "applied migrations empty -> " in first.output()  # the demo's own database
    finally:
        assert first.stop(signal.SIGTERM) == 0
    proc = PiyasaProcess(["up", "--sandbox"], env, tmp_path / "up2.log")
    try:
        proc.wait_http("/readyz")  # running, so SIGINT stops a started process
        assert "schema up to date" in proc.output()
    finally:
        assert proc.stop(signal.SIGINT) == 0


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"PIYASA_DATABASE_URL": "mongodb://localhost/x"}, "PIYASA_DATABASE_URL"),
        (  # with a token: the demo (no token) never uses the configured database
            {
                "PIYASA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                "PIYASA_ADMIN_BOT_TOKEN": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ",
            },
            "cannot reach the database",
        ),
        ({"PIYASA_ADMIN_BOT_TOKEN": "12345"}, "PIYASA_ADMIN_BOT_TOKEN"),
        ({"PIYASA_HTTP_PORT": "http"}, "PIYASA_HTTP_PORT"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    tmp_path: Path, extra: dict[str, str], needle: str
) -> None:
    result = run_cli(["up"], base_env(tmp_path / "data", **extra))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert lines[0].startswith("piyasa: error: ")
    assert "Traceback" not in result.stderr + result.stdout


def test_unwritable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli(["up"], base_env(blocker / "data"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "PIYASA_DATA_DIR" in result.stderr and "not writable" in result.stderr


def test_help_lists_commands(tmp_path: Path) -> None:
    result = run_cli(["--help"], base_env(tmp_path))
    assert result.returncode == 0
    for name in ("up", "migrate"):
        assert name in result.stdout
