"""Secrets at rest are encrypted and rotatable; log lines never carry them."""

from __future__ import annotations

import logging

import pytest

from piyasa.crypto import SecretBox, SecretBoxError, fingerprint
from piyasa.logs import REDACTOR, RING, setup_logging


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    box = SecretBox("key-one")
    token = "123456789:AAE-abcdefghijklmnopqrstuvwxyz012345"
    sealed = box.encrypt(token)
    assert token not in sealed
    assert box.decrypt(sealed) == token


def test_wrong_key_or_tampering_is_refused() -> None:
    sealed = SecretBox("key-one").encrypt("secret")
    with pytest.raises(SecretBoxError):
        SecretBox("key-two").decrypt(sealed)
    with pytest.raises(SecretBoxError):
        SecretBox("key-one").decrypt(sealed[:-4] + "AAAA")


def test_rotation_new_key_first_old_still_opens() -> None:
    old = SecretBox("old-key").encrypt("secret")
    both = SecretBox("new-key,old-key")
    assert both.decrypt(old) == "secret"
    rotated = both.rotate(old)
    assert SecretBox("new-key").decrypt(rotated) == "secret"


def test_fingerprint_is_stable_and_not_the_secret() -> None:
    assert fingerprint("abc") == fingerprint("abc") != "abc"


def test_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    setup_logging("INFO", ["my-very-secret-value"])
    log = logging.getLogger("piyasa.test")
    url = "https://api.telegram.org/bot123456789:AAE-abcdefghijklmnopqrstuvwxyz012345/getMe"
    log.warning("calling %s with key sk-proj-abcdefgh12345 and my-very-secret-value", url)
    log.warning("db postgresql://u:pw123456@h/db")
    text = "\n".join(RING.lines)
    assert "AAE-abcdefghijklmnopqrstuvwxyz012345" not in text
    assert "sk-proj-abcdefgh12345" not in text
    assert "my-very-secret-value" not in text
    assert "pw123456" not in text
    assert "calling" in text


def test_redactor_exceptions_also_redacted() -> None:
    setup_logging("INFO")
    log = logging.getLogger("piyasa.test2")
    try:
        raise RuntimeError("boom 987654321:ZZZ-abcdefghijklmnopqrstuvwxyz")
    except RuntimeError:
        log.exception("failed")
    assert "ZZZ-abcdefghijklmnopqrstuvwxyz" not in RING.lines[-1]
    assert "boom" in RING.lines[-1]
    assert REDACTOR("nothing secret") == "nothing secret"


def _after_marker(marker: str) -> str:
    lines = list(RING.lines)
    return "\n".join(lines[max(i for i, line in enumerate(lines) if marker in line) + 1 :])


def test_a_cancelled_connection_reset_is_quiet_not_a_traceback() -> None:
    """SQLAlchemy's pool, when a stop cancels a task while its connection goes back to the
    pool, logs ERROR "Exception during reset or similar" with a CancelledError traceback
    (seen in `piyasa up`'s stop output on a loaded machine). It becomes an INFO line below
    the library's floor: no traceback, no error. Other pool errors keep their traceback."""
    import asyncio

    pool_log = logging.getLogger("sqlalchemy.pool.impl.AsyncAdaptedQueuePool")
    setup_logging("INFO")
    logging.getLogger("piyasa.test").warning("marker-1")
    try:
        raise asyncio.CancelledError
    except asyncio.CancelledError:
        pool_log.error("Exception during reset or similar", exc_info=True)
    quiet = _after_marker("marker-1")
    assert "Traceback" not in quiet and "Exception during reset" not in quiet, quiet
    logging.getLogger("piyasa.test").warning("marker-2")
    try:
        raise OSError("disk I/O error")
    except OSError:
        pool_log.error("Exception during reset or similar", exc_info=True)
    loud = _after_marker("marker-2")
    assert "Traceback" in loud and "disk I/O error" in loud, loud
