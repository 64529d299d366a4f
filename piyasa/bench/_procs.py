"""Launch and measure child processes: a clean environment, free ports, wall/CPU/RSS of a
finished child, and a probe that runs one `piyasa` CLI command and reports which heavy
libraries it imported. Shared by ``piyasa bench startup`` and the import tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Libraries a command that never talks to Telegram, Slack or an LLM must not import.
FORBIDDEN = ("aiogram", "slack_bolt", "slack_sdk", "openai")
# Reported too, to see what a command pays for; importing them is not an error.
WATCHED = (*FORBIDDEN, "pydantic", "aiohttp", "redis", "sqlalchemy", "alembic", "argon2")
_MARK = "PIYASA-IMPORT-PROBE "

# Runs as ``python -c PROBE ARGS...``: times every outermost import statement on the
# importing thread's CPU clock (so a worker thread's import counts once, and other threads'
# work does not), runs ``piyasa.cli.run(ARGS)`` as the `piyasa` script does, then prints
# one marker line on stderr.
PROBE = f"""
import builtins, json, sys, threading, time
_orig, _local, _cpu = builtins.__import__, threading.local(), [0.0]
def _timed(*a, **k):
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    t = time.thread_time() if depth == 0 else 0.0
    try:
        return _orig(*a, **k)
    finally:
        _local.depth = depth
        if depth == 0:
            _cpu[0] += time.thread_time() - t
builtins.__import__ = _timed
code = 1
try:
    from piyasa.cli import run
    code = run(sys.argv[1:])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
finally:
    sys.stdout.flush()
    seen = sorted(m for m in {list(WATCHED)!r} if m in sys.modules)
    print({_MARK!r} + json.dumps({{"modules": seen, "import_cpu_s": _cpu[0]}}), file=sys.stderr)
sys.exit(code)
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without PIYASA_*/OPENAI_*, plus a data dir and free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIYASA_", "OPENAI_"))}
    env.update(
        PIYASA_DATA_DIR=str(data_dir),
        PIYASA_HTTP_PORT=str(free_port()),
        PIYASA_SANDBOX_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Finished:
    """A child that ran to its end (or was killed at the ceiling)."""

    returncode: int
    wall_s: float  # launch -> reaped, seconds
    cpu_s: float  # user + system CPU seconds of the child itself
    max_rss_mb: float  # peak resident set size, MiB
    stdout: str
    stderr: str
    timed_out: bool = False


def run_measured(argv: Sequence[str], env: Mapping[str, str], ceiling_s: float = 120.0) -> Finished:
    """Run ``argv`` to completion and read its own rusage from ``wait4``.

    A child still running after ``ceiling_s`` seconds is killed and marked ``timed_out``.
    Output goes to temporary files, so a chatty child can never block on a full pipe.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            proc.kill()

        killer = threading.Timer(ceiling_s, kill)
        killer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Finished(
            returncode=proc.returncode,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            max_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            timed_out=fired.is_set(),
        )


@dataclass
class Probe:
    """One `piyasa` command run under :data:`PROBE`."""

    argv: list[str]
    run: Finished
    modules: list[str] = field(default_factory=list)  # WATCHED libraries it imported
    import_cpu_s: float | None = None  # CPU seconds in import statements (main thread+)

    @property
    def forbidden(self) -> list[str]:
        """FORBIDDEN libraries the command imported."""
        return [m for m in self.modules if m in FORBIDDEN]

    def as_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.run.returncode,
            "wall_s": round(self.run.wall_s, 3),
            "cpu_s": round(self.run.cpu_s, 3),
            "import_cpu_s": None if self.import_cpu_s is None else round(self.import_cpu_s, 3),
            "max_rss_mb": round(self.run.max_rss_mb, 1),
            "aiogram_imported": "aiogram" in self.modules,
            "modules": self.modules,
        }


def probe_command(args: Sequence[str], env: Mapping[str, str], ceiling_s: float = 120.0) -> Probe:
    """Run ``piyasa ARGS`` in a fresh interpreter and report what it imported.

    ``stderr`` of the result no longer holds the probe's marker line.
    """
    run = run_measured([sys.executable, "-c", PROBE, *args], env, ceiling_s)
    probe = Probe(argv=list(args), run=run)
    kept = []
    for line in run.stderr.splitlines(keepends=True):
        if line.startswith(_MARK):
            data = json.loads(line[len(_MARK) :])
            probe.modules, probe.import_cpu_s = data["modules"], data["import_cpu_s"]
        else:
            kept.append(line)
    run.stderr = "".join(kept)
    return probe
