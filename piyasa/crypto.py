"""Encryption of secrets at rest (bot tokens, TOTP seeds, API keys), and keyed digests.

Fernet (AES-128-CBC + HMAC-SHA256) keyed from PIYASA_SECRET_KEY through HKDF, so the
operator's key can be any string. Several keys may be given (newest first, separated
by commas) to rotate: encrypt with the first, decrypt with any.

Short secrets that are only ever compared (one-time codes) are stored as HMAC-SHA256
digests under a key derived from the same secret key (HKDF, another ``info``), so a copy
of the database alone cannot be brute-forced offline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBoxError(ValueError):
    """A ciphertext could not be opened: wrong key or tampered data."""


def _derive(key: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"piyasa-at-rest", info=info).derive(
        key.encode()
    )


def _fernet(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(key, b"v1")))


class SecretBox:
    """Encrypts and decrypts short secrets with the configured key(s)."""

    def __init__(self, secret_key: str) -> None:
        keys = [k.strip() for k in str.__str__(secret_key).split(",") if k.strip()]
        if not keys:
            raise ValueError("PIYASA_SECRET_KEY is empty")
        self._multi = MultiFernet([_fernet(k) for k in keys])
        self._mac_keys = [_derive(k, b"mac-v1") for k in keys]

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

    def digest(self, value: str) -> str:
        """Hex HMAC-SHA256 of ``value`` under the newest key (64 characters)."""
        return self.digests(value)[0]

    def digests(self, value: str) -> list[str]:
        """``value``'s digest under every configured key, newest first: what to look for
        when matching, so digests stored before a key rotation still match."""
        data = value.encode()
        return [hmac.new(k, data, hashlib.sha256).hexdigest() for k in self._mac_keys]


def fingerprint(value: str) -> str:
    """A stable, non-reversible id for a secret (uniqueness checks without storing it)."""
    return hashlib.sha256(value.encode()).hexdigest()
