"""Commands that never talk to Telegram, Slack or an LLM never import their clients.

`import aiogram.types` alone costs 3-8 s of CPU (pydantic builds every Bot API model), so
`piyasa user list` or `piyasa --help` paying it would make the shell feel broken on a slow
machine. Each command runs in a fresh interpreter with a fresh data dir and reports the
modules it ended with (see ``piyasa.bench._procs.PROBE``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from piyasa.bench._procs import clean_env, free_port, probe_command

# name -> (arguments, expected exit code); `db copy` needs a migrated source (see below)
COMMANDS: dict[str, tuple[list[str], int]] = {
    "help": (["--help"], 0),
    "user list": (["user", "list"], 0),
    "user add": (["user", "add", "alice", "--role", "admin"], 0),
    "migrate": (["migrate"], 0),
    "migrate --status": (["migrate", "--status"], 0),
    "check": (["check"], 0),
    "db copy": (["db", "copy", "--to", "sqlite:///{tmp}/copy.db"], 0),
    "status": (["status"], 3),  # 3: not running
    "stop": (["stop"], 0),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_imports_no_chat_or_llm_client(name: str, tmp_path: Path) -> None:
    args, expected_code = COMMANDS[name]
    args = [a.format(tmp=tmp_path) for a in args]
    env = clean_env(tmp_path / "data")
    if name == "db copy":  # it refuses a source below the newest schema
        assert probe_command(["migrate"], env).run.returncode == 0
    probe = probe_command(args, env, ceiling_s=120)
    assert probe.run.returncode == expected_code, probe.run.stdout + probe.run.stderr[-3000:]
    assert probe.import_cpu_s is not None, probe.run.stderr[-3000:]
    assert probe.forbidden == [], (
        f"`piyasa {' '.join(args)}` imported {probe.forbidden}; make the import lazy "
        "(find the chain with: python -X importtime -m piyasa.cli ... 2>&1 | grep NAME)"
    )


def test_probe_sees_a_client_a_command_does_import(tmp_path: Path) -> None:
    """The control: `check` with an LLM key calls models.list through the openai SDK (to a
    closed local port, so it fails fast), and the probe must report openai."""
    env = clean_env(
        tmp_path / "data",
        OPENAI_API_KEY="sk-test-not-a-real-key",
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
    )
    probe = probe_command(["check"], env, ceiling_s=120)
    assert probe.run.returncode == 1, probe.run.stdout + probe.run.stderr[-3000:]
    assert "openai" in probe.forbidden, probe.modules
