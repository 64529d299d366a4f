"""Encryption of secrets at rest (bot tokens, TOTP seeds, API keys).

Fernet (AES-128-CBC + HMAC-SHA256) keyed from PIYASA_SECRET_KEY through HKDF, so the
operator's key can be any string. Several keys may be given (newest first, separated
by commas) to rotate: encrypt with the first, decrypt with any.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBoxError(ValueError):
    """A ciphertext could not be opened: wrong key or tampered data."""


def _fernet(key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"piyasa-at-rest", info=b"v1").derive(
        key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


class SecretBox:
    """Encrypts and decrypts short secrets with the configured key(s)."""

    def __init__(self, secret_key: str) -> None:
        keys = [k.strip() for k in str.__str__(secret_key).split(",") if k.strip()]
        if not keys:
            raise ValueError("PIYASA_SECRET_KEY is empty")
        self._multi = MultiFernet([_fernet(k) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._multi.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretBoxError(
                "cannot decrypt: wrong PIYASA_SECRET_KEY or tampered data"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the newest key."""
        return self._multi.rotate(ciphertext.encode()).decode()


def fingerprint(value: str) -> str:
    """A stable, non-reversible id for a secret (uniqueness checks without storing it)."""
    return hashlib.sha256(value.encode()).hexdigest()
