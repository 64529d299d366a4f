"""`piyasa stop | restart | status` for a `piyasa up --detach` process (pid file in the
data dir). `restart` is how settings that a running process cannot swap take effect
(database and Redis URLs, the admin bot token)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from piyasa.admin.setup import pidfile
from piyasa.config import load_settings

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
READY_LINE = "Running. Press Ctrl+C to stop."
NOT_RUNNING = 3  # LSB: program is not running


def register(sub: argparse._SubParsersAction) -> None:
    st = sub.add_parser(
        "status",
        help="is a detached piyasa running? (exit 3 when not)",
        description="Show the detached process (pid file in the data dir), its web URL and "
        "/healthz. Exit 0 when running, 3 when not.",
    )
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=run_status)
    sp = sub.add_parser(
        "stop",
        help="stop a detached piyasa (SIGTERM, clean shutdown)",
        description="Stop the process started with `piyasa up --detach` and wait for it.",
    )
    sp.set_defaults(func=run_stop)
    rs = sub.add_parser(
        "restart",
        help="restart a detached piyasa (picks up database/Redis/token changes)",
        description="Stop the detached process and start it again with the same arguments, "
        "reading the configuration afresh. Starts it when it was not running.",
    )
    rs.set_defaults(func=run_restart)


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def start_detached(data_dir: Path, up_args: list[str], env: dict[str, str] | None = None) -> int:
    """Start `piyasa up` in its own session, log to DATA_DIR/piyasa.log, wait until ready."""
    running = pidfile.read(data_dir)
    if running is not None:
        print(
            f"piyasa: already running (pid {running.pid}); use `piyasa restart` or `piyasa stop`",
            file=sys.stderr,
        )
        return 1
    log = pidfile.log_path(data_dir)
    offset = log.stat().st_size if log.exists() else 0
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # owner only
    with os.fdopen(fd, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "piyasa.cli", "up", *up_args],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env or os.environ),
        )
    info = pidfile.PidInfo(pid=proc.pid, args=list(up_args), log=str(log))
    pidfile.write(data_dir, info)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = _read_from(log, offset)
        if READY_LINE in text:
            m = re.search(r"^Web: (\S+)", text, re.M)
            info.web_url = m.group(1) if m else ""
            pidfile.write(data_dir, info)
            print(f"Piyasa is running in the background (pid {proc.pid}).")
            if info.web_url:
                print(f"  web: {info.web_url}  (status page, /healthz)")
            if db := re.search(r", database (\w+ \([^)]*\))", text):
                print(f"  database: {db.group(1)}")  # masked; which one is live matters
            print(f"  log: {log}")
            print("  stop with `piyasa stop`, check with `piyasa status`")
            return 0
        if proc.poll() is not None:
            pidfile.remove(data_dir, proc.pid)
            print(f"piyasa: it stopped at start (exit {proc.returncode}); last log lines:")
            print(_read_from(log, offset).strip()[-3000:])
            return 1
        time.sleep(0.1)
    print(f"piyasa: not ready after {START_TIMEOUT_S:.0f}s (pid {proc.pid}); see {log}")
    return 1


def _read_from(path: Path, offset: int) -> str:
    """What ``path`` holds past ``offset``; from its start when it is shorter (it rotated)."""
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size < offset:
                offset = 0
            fh.seek(offset)
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def stop(data_dir: Path) -> tuple[bool, str]:
    """(was running, message)."""
    info = pidfile.read(data_dir)
    if info is None:
        return False, "Piyasa is not running (no live pid file in the data dir)."
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        pidfile.remove(data_dir, info.pid)
        return False, "Piyasa is not running."
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not pidfile.is_piyasa(info.pid):
            break
        time.sleep(0.1)
    else:
        os.kill(info.pid, signal.SIGKILL)
        pidfile.remove(data_dir, info.pid)
        return True, (
            f"Piyasa (pid {info.pid}) did not stop within {STOP_TIMEOUT_S:.0f}s and was killed; "
            "queued messages stay in the outbox for the next start."
        )
    pidfile.remove(data_dir, info.pid)
    return True, f"Stopped Piyasa (pid {info.pid})."


def run_stop(_args: argparse.Namespace) -> int:
    settings = load_settings()
    _was, message = stop(settings.data_dir)
    print(message)
    return 0


def run_restart(_args: argparse.Namespace) -> int:
    settings = load_settings()
    info = pidfile.read(settings.data_dir)
    args = info.args if info else []
    was, message = stop(settings.data_dir)
    if was:
        print(message)
    return start_detached(settings.data_dir, args)


def status(data_dir: Path) -> dict:
    info = pidfile.read(data_dir)
    if info is None:
        return {"running": False}
    out = {
        "running": True,
        "pid": info.pid,
        "uptime_s": round(time.time() - info.started),
        "web_url": info.web_url,
        "log": info.log,
        "args": info.args,
        "healthz": None,
    }
    if info.web_url:
        try:
            with urllib.request.urlopen(info.web_url + "/healthz", timeout=2) as resp:
                out["healthz"] = resp.status
        except OSError as exc:
            out["healthz"] = type(exc).__name__
    return out


def run_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    st = status(settings.data_dir)
    if args.json:
        print(json.dumps(st, indent=2))
    elif not st["running"]:
        print("Piyasa is not running.")
    else:
        print(f"Piyasa is running: pid {st['pid']}, up {st['uptime_s']}s")
        if st["web_url"]:
            print(f"  web: {st['web_url']}  /healthz: {st['healthz']}")
        print(f"  log: {st['log']}")
    return 0 if st["running"] else NOT_RUNNING
