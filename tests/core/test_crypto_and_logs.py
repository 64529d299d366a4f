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
