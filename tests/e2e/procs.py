"""Start real `piyasa` processes for end-to-end tests, and wait on what they serve."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from piyasa.bench._procs import clean_env, free_port

__all__ = ["PiyasaProcess", "base_env", "free_port", "run_cli"]
from tests.waiting import HANG_S, hang, wait_until

base_env = clean_env  # one definition: the benchmarks launch `piyasa up` the same way


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

    def sandbox_key(self) -> str:
        """The demo sandbox's per-run key, from the `sandbox chat:` link it printed once."""
        self.wait_output("/sandbox?key=")
        return self.output().split("/sandbox?key=", 1)[1].split()[0]

    def sandbox_api(self, path: str) -> Any:
        """GET the demo sandbox's JSON API (``/sandbox/api/PATH``) with the run's key."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.env['PIYASA_SANDBOX_PORT']}/sandbox/api/{path}",
            headers={"X-Sandbox-Key": self.sandbox_key()},
        )
        with urllib.request.urlopen(request, timeout=HANG_S) as resp:
            return json.load(resp)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_http(self, path: str, status: int = 200) -> None:
        """Poll until ``path`` answers ``status``; fail at once if the process exits."""

        def answered() -> bool:
            self._alive(f"{path} to answer {status}")
            try:
                with urllib.request.urlopen(self.http_url + path, timeout=5) as resp:
                    return resp.status == status
            except urllib.error.HTTPError as exc:  # 503 from /readyz while parts start
                return exc.code == status
            except OSError:
                return False

        wait_until(answered, f"{path} to answer {status}", interval=0.1, output=self.output)

    def wait_output(self, needle: str) -> None:
        """Wait until the process has printed ``needle``; fail at once if it exits."""

        def printed() -> bool:
            self._alive(repr(needle))
            return needle in self.output()

        wait_until(printed, f"{needle!r} in the output", output=self.output)

    def _alive(self, what: str) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"piyasa exited {self.proc.returncode} while we waited for {what}:\n"
                + self.output()[-3000:]
            )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(HANG_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise hang(f"piyasa to exit after signal {sig}", output=self.output) from None
            except BaseException:  # the wait itself failed (interrupted): never leave it running
                self.proc.kill()
                self.proc.wait()
                raise
        self._log.close()
        return self.proc.returncode


def run_cli(
    args: list[str], env: Mapping[str, str], ceiling: float = HANG_S, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `piyasa ARGS` to completion; a run still going after ``ceiling`` is a hang."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "piyasa.cli", *args],
            env=dict(env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=ceiling,
        )
    except subprocess.TimeoutExpired as exc:
        out = [
            x.decode(errors="replace") if isinstance(x, bytes) else x or ""
            for x in (exc.stdout, exc.stderr)
        ]
        raise hang(f"`piyasa {' '.join(args)}` to exit", ceiling, "".join(out)) from None
