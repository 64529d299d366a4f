#!/usr/bin/env python3
"""Fail CI when a test skipped for a missing PostgreSQL, Redis or Chromium.

Usage: .ci/skips.py JUNIT_XML

Reads pytest's JUnit report (``--junitxml``), so the check does not depend on how the log
words a skip: every ``<skipped>`` whose reason (its ``message``) names one of the services,
in any case, counts. Prints each such test with its reason and exits 1; exits 0 when there is none
(other skips are only counted); exits 2 when the report is missing or unreadable, because a
run that cannot be checked must not pass.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

# The same words as tests/conftest.py's SERVICE_WORDS (tests/test_ci.py keeps them equal).
SERVICE_WORDS = re.compile(r"postgres|redis|chromium|chrome", re.IGNORECASE)


def service_skips(junit_path: str) -> tuple[list[tuple[str, str]], int]:
    """(test id, reason) of every skip naming a service, and the number of other skips."""
    root = ET.parse(junit_path).getroot()
    found: list[tuple[str, str]] = []
    other = 0
    for case in root.iter("testcase"):
        for skipped in case.findall("skipped"):
            reason = skipped.get("message") or _without_location(skipped.text or "")
            test_id = "::".join(p for p in (case.get("classname"), case.get("name")) if p)
            if SERVICE_WORDS.search(reason):
                found.append((test_id, reason))
            else:
                other += 1
    return found, other


def _without_location(text: str) -> str:
    """The body reads ``/path/to/test_x.py:12: reason``; a path (tests/e2e/chromium.py, a
    clone in /tmp/redis-work) must not count as a reason."""
    return re.sub(r"^\S+:\d+: ", "", text.strip())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: .ci/skips.py JUNIT_XML", file=sys.stderr)
        return 2
    try:
        found, other = service_skips(argv[1])
    except (OSError, ET.ParseError) as exc:
        print(f"ci: cannot read the test report {argv[1]}: {exc}", file=sys.stderr)
        return 2
    if found:
        print(
            f"ci: {len(found)} test(s) skipped for PostgreSQL, Redis or Chromium; "
            "all must run in CI:",
            file=sys.stderr,
        )
        for test_id, reason in found:
            print(f"  SKIPPED {test_id}: {reason}", file=sys.stderr)
        return 1
    print(f"ci: no test skipped for PostgreSQL, Redis or Chromium ({other} other skip(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
