"""Headless Chromium (Debian's `chromium`) as the e2e tests start it: one set of flags.

The background-networking flags matter on this closed network: without them Chromium
keeps trying hosts it cannot reach. Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from tests.conftest import skip_or_fail
from tests.waiting import finishes

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def require_chromium() -> None:
    """Skip with the install hint when the browser is absent; fail where services are
    required (`.ci/run` installs it)."""
    if not shutil.which("chromium"):
        skip_or_fail("chromium is not installed (apt-get install chromium)")


def profile_dir(prefix: str = "piyasa-chromium-") -> tempfile.TemporaryDirectory[str]:
    """A throwaway --user-data-dir. Chromium's helper processes can still write there for
    a moment after the browser is killed, so a late file must not fail the teardown."""
    return tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True)


async def run_chromium(*args: str) -> str:
    """Run headless Chromium once with the shared flags and a throwaway profile, e.g.
    ``run_chromium("--dump-dom", url)`` or ``run_chromium(f"--screenshot={path}", url)``;
    returns its stdout (the DOM for ``--dump-dom``). Fails the test with the tail of
    stderr on a non-zero exit; a browser that hangs is killed at the hang ceiling."""
    with profile_dir() as profile:
        proc = await asyncio.create_subprocess_exec(
            "chromium",
            *FLAGS,
            f"--user-data-dir={profile}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await finishes(proc.communicate(), f"chromium {args[0]} to exit")
        except AssertionError:
            proc.kill()
            await proc.wait()
            raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")
