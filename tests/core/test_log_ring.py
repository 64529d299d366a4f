"""Issue 11, item 7: the log ring the /health download reads is bounded in bytes, long lines
are cut, and a library's records below its floor never reach our handlers, whatever
logger they come through."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import slack_bolt

from piyasa.logs import (
    MAX_LINE_CHARS,
    RING,
    RING_MAX_BYTES,
    RingBufferHandler,
    setup_logging,
)

MARKER_ROOM = 64  # the "…[N characters, cut]…" marker


@pytest.fixture
def ring_logger() -> Iterator[logging.Logger]:
    """A private logger writing to the shared RING (the one the download reads)."""
    logger = logging.getLogger("piyasa.test.ring")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(RING)
    RING.lines.clear()
    try:
        yield logger
    finally:
        logger.removeHandler(RING)
        RING.lines.clear()


def test_a_huge_record_is_cut_and_keeps_its_head_and_tail(ring_logger) -> None:
    ring_logger.warning("start %s end-of-it", "x" * 2_000_000)
    [line] = RING.lines
    assert len(line) <= MAX_LINE_CHARS + MARKER_ROOM
    assert "start" in line and line.endswith("end-of-it") and "characters, cut" in line


def test_the_ring_holds_at_most_its_bytes_and_the_newest_lines(ring_logger) -> None:
    for i in range(3000):
        ring_logger.info("line %d %s", i, "é" * 3000)  # two bytes each: bytes, not characters
    held = sum(len(line.encode()) for line in RING.lines)
    assert held <= RING_MAX_BYTES and RING.lines.size_bytes == held
    assert "line 2999 " in RING.lines[-1] and len(RING.lines) < 1000
    RING.lines.clear()
    ring_logger.info("after a clear")
    assert RING.lines[0].endswith("after a clear") and RING.lines.size_bytes < 200


def _record(level: int, pathname: str, name: str = "surface.py:handle") -> logging.LogRecord:
    return logging.LogRecord(name, level, pathname, 1, "body: %s", ("secret-body",), None)


def test_library_records_below_their_floor_are_dropped_by_where_they_come_from() -> None:
    ring = RingBufferHandler()
    inside_bolt = os.path.join(os.path.dirname(slack_bolt.__file__), "middleware", "x.py")
    # slack-bolt logs bad-signature bodies at INFO on loggers named after the app
    ring.handle(_record(logging.INFO, inside_bolt))
    ring.handle(_record(logging.DEBUG, "/somewhere/site-packages/x.py", name="slack_sdk.web"))
    assert not ring.lines
    ring.handle(_record(logging.ERROR, inside_bolt))
    ring.handle(_record(logging.DEBUG, __file__, name="piyasa.x"))  # our own debug stays
    assert len(ring.lines) == 2


def test_setup_makes_libraries_quiet_even_when_they_copy_the_root_level() -> None:
    from slack_bolt.logger import get_bolt_logger

    manager = logging.Logger.manager
    saved = {n: lg.level for n, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    root_level = logging.getLogger().level
    try:
        setup_logging("DEBUG")
        assert logging.getLogger("piyasa.anything").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("chatops.anything").isEnabledFor(logging.DEBUG)

        class MadeAfterSetup:
            pass

        made = get_bolt_logger(MadeAfterSetup)  # level copied from the root logger
        assert not made.isEnabledFor(logging.INFO)
        assert not logging.getLogger("slack_sdk.web.async_base_client").isEnabledFor(logging.INFO)
        assert not logging.getLogger("aiosqlite").isEnabledFor(logging.INFO)
        assert logging.getLogger("aiogram.dispatcher").isEnabledFor(logging.INFO)
        with pytest.raises(ValueError, match="unknown log level"):
            setup_logging("LOUD")
    finally:
        logging.getLogger().setLevel(root_level)
        for name, level in saved.items():
            logger = manager.loggerDict.get(name)
            if isinstance(logger, logging.Logger):
                logger.setLevel(level)


def test_redaction_knows_bearer_tokens_app_tokens_and_totp_seeds() -> None:
    import pyotp

    from piyasa.logs import REDACTOR

    seed = pyotp.random_base32()
    line = REDACTOR(
        f"seed {seed} otpauth://totp/p:x?secret={seed[:20]}&issuer=p "
        "Authorization: Bearer m3trics-token-0123 xapp-1-A0ABCDEFGH-123"
    )
    for secret in (seed, seed[:20], "m3trics-token-0123", "xapp-1-A0ABCDEFGH"):
        assert secret not in line
    assert "issuer=p" in line and REDACTOR("a" * 32) == "a" * 32
