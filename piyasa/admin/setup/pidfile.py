"""The pid file of a detached `piyasa up` (``DATA_DIR/piyasa.pid``).

It holds JSON (pid, the `up` arguments, the web URL, the log file, start time) so `status`
can say where it serves and `restart` can start it again the same way. A pid file whose
process is gone, or whose pid now belongs to another program, counts as not running.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PID_FILE = "piyasa.pid"
LOG_FILE = "piyasa.log"


@dataclass
class PidInfo:
    pid: int
    args: list[str] = field(default_factory=list)
    web_url: str = ""
    log: str = ""
    started: float = field(default_factory=time.time)


def pid_path(data_dir: Path) -> Path:
    return Path(data_dir) / PID_FILE


def log_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOG_FILE


def is_piyasa(pid: int) -> bool:
    """Alive and really a piyasa process (pids get reused)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return any("piyasa" in part for part in proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def read(data_dir: Path) -> PidInfo | None:
    """The running daemon's info, or None (a stale file is removed)."""
    path = pid_path(data_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        info = PidInfo(**raw)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    if not is_piyasa(info.pid):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return info


def write(data_dir: Path, info: PidInfo) -> None:
    path = pid_path(data_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(info), fh)
    os.replace(tmp, path)


def remove(data_dir: Path, pid: int | None = None) -> None:
    """Remove the pid file (only if it still names ``pid``, when given)."""
    path = pid_path(data_dir)
    with contextlib.suppress(OSError, ValueError):
        if pid is not None and json.loads(path.read_text()).get("pid") != pid:
            return
        path.unlink()
