"""Headless Chromium (Debian's `chromium`) as the e2e tests start it: one set of flags.

The background-networking flags matter on this closed network: without them Chromium
keeps trying hosts it cannot reach. Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.conftest import skip_or_fail

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
