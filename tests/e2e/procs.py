"""Start real `piyasa` processes for end-to-end tests, and wait on what they serve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no PIYASA_* or OPENAI_* leaking in from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIYASA_", "OPENAI_"))}
    env.update(
        PIYASA_DATA_DIR=str(data_dir),
        PIYASA_HTTP_PORT=str(free_port()),
        PIYASA_SANDBOX_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class PiyasaProcess:
    """A `piyasa` subprocess whose output is captured to a file (no pipe deadlocks)."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "piyasa.cli", *args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PIYASA_HTTP_PORT']}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_http(self, path: str, status: int = 200, timeout: float = 20.0) -> float:
        """Poll until ``path`` answers ``status``; returns seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"piyasa exited {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.http_url + path, timeout=2) as resp:
                    if resp.status == status:
                        return time.monotonic() - start
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{path} not {status} after {timeout}s:\n{self.output()}")

    def wait_output(self, needle: str, timeout: float = 20.0) -> None:
        start = time.monotonic()
        while needle not in self.output():
            if self.proc.poll() is not None or time.monotonic() - start > timeout:
                raise AssertionError(f"{needle!r} never printed:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"did not stop within {timeout}s:\n{self.output()}") from None
        self._log.close()
        return self.proc.returncode


def run_cli(
    args: list[str], env: Mapping[str, str], timeout: float = 60.0, stdin: str | None = None
):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "piyasa.cli", *args],
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
