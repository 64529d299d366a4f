"""The archive format: a payload file (a SQLite database or a ``pg_dump -Fc`` dump),
zstd-compressed and encrypted with AES-256-GCM in chunks, streamed (memory does not grow
with the payload).

Layout (all integers big-endian)::

    b"PBK1"  u32 header_len  header (JSON, authenticated as associated data of every chunk)
    chunk*   u32 ct_len  ciphertext (AES-GCM, 16-byte tag included)

Every chunk's nonce is the header's 8-byte ``nonce`` prefix + a 4-byte counter, and its
associated data is ``sha256(header) + counter + final flag``, so chunks cannot be
reordered, dropped or moved between archives. The last chunk (final flag 1) holds the
trailer JSON ``{"sha256": payload sha256 hex, "payload_bytes": n}``: an archive cut short
has no final chunk and is refused (``backup.corrupt``); bytes after it are refused too.

Keys: each archive has its own random 256-bit data key, stored in the header wrapped
(AES-GCM) under a key derived from the secret key (HKDF-SHA256, per-archive salt) and,
when a backup passphrase is configured, also under one derived from the passphrase
(scrypt n=2^15, r=8, p=1), so the passphrase alone opens the archive after the data dir
(and its secret key) is lost.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from piyasa.backup.model import BackupError

MAGIC = b"PBK1"
FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20  # compressed bytes per encrypted chunk
READ_BYTES = 1 << 20  # payload bytes read per step
ZSTD_LEVEL = 3
ZSTD_THREADS = 2
# zstd's multithreaded mode keeps several jobs of input and output in flight; its default job
# (4 x the window, 8 MB at level 3) made a backup's RSS grow by ~150 MB. 2 MB jobs keep it at
# ~35 MB whatever the database size (tests/backup/test_streaming_memory.py), with the same
# compression ratio (zstd's own lower bound for a job is 512 KB: zstd.h, ZSTD_c_jobSize).
ZSTD_JOB_BYTES = 2 << 20
MAX_HEADER = 1 << 20
SCRYPT_N = 1 << 15

Tick = Callable[[int], None]  # payload bytes done so far


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())


def secret_kek(secret: str, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"piyasa-backup-v1").derive(
        secret.encode()
    )


def passphrase_kek(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=8, p=1).derive(passphrase.encode())


def _wrap(kek: bytes, dek: bytes, label: str) -> str:
    nonce = os.urandom(12)
    return _b64(nonce + AESGCM(kek).encrypt(nonce, dek, label.encode()))


def _unwrap(kek: bytes, blob: str, label: str) -> bytes | None:
    raw = _unb64(blob)
    try:
        return AESGCM(kek).decrypt(raw[:12], raw[12:], label.encode())
    except InvalidTag:
        return None


def split_keys(secret_key: str) -> list[str]:
    """The comma-separated keys of PIYASA_SECRET_KEY (newest first)."""
    return [k.strip() for k in secret_key.split(",") if k.strip()]


def _aad(header_hash: bytes, counter: int, final: bool) -> bytes:
    return header_hash + struct.pack(">IB", counter, 1 if final else 0)


def _nonce(prefix: bytes, counter: int) -> bytes:
    return prefix + struct.pack(">I", counter)


def pack(
    payload: Path,
    out: BinaryIO,
    meta: dict[str, Any],
    *,
    secret_key: str,
    passphrase: str | None = None,
    tick: Tick | None = None,
) -> dict[str, Any]:
    """Compress and encrypt ``payload`` into ``out``; returns the trailer
    (``sha256`` hex of the payload, ``payload_bytes``). ``meta`` goes into the header."""
    dek = AESGCM.generate_key(bit_length=256)
    salt = os.urandom(16)
    keys = split_keys(secret_key)
    wraps: dict[str, str] = {"secret": _wrap(secret_kek(keys[0], salt), dek, "secret")}
    if passphrase:
        wraps["passphrase"] = _wrap(passphrase_kek(passphrase, salt), dek, "passphrase")
    prefix = os.urandom(8)
    header = {
        "format": FORMAT_VERSION,
        "cipher": "AES-256-GCM",
        "compression": "zstd",
        "chunk_bytes": CHUNK_BYTES,
        "salt": _b64(salt),
        "nonce": _b64(prefix),
        "wraps": wraps,
        "meta": meta,
    }
    raw_header = json.dumps(header, sort_keys=True).encode()
    header_hash = hashlib.sha256(raw_header).digest()
    out.write(MAGIC + struct.pack(">I", len(raw_header)) + raw_header)
    aes = AESGCM(dek)
    counter = 0
    pending = bytearray()

    def emit(data: bytes, final: bool) -> None:
        nonlocal counter
        ct = aes.encrypt(_nonce(prefix, counter), data, _aad(header_hash, counter, final))
        out.write(struct.pack(">I", len(ct)))
        out.write(ct)
        counter += 1

    digest = hashlib.sha256()
    total = 0
    params = zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL, threads=ZSTD_THREADS, job_size=ZSTD_JOB_BYTES
    )
    cobj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    with payload.open("rb") as src:
        while block := src.read(READ_BYTES):
            digest.update(block)
            total += len(block)
            pending += cobj.compress(block)
            while len(pending) >= CHUNK_BYTES:
                emit(bytes(pending[:CHUNK_BYTES]), False)
                del pending[:CHUNK_BYTES]
            if tick:
                tick(total)
    pending += cobj.flush()
    while pending:
        emit(bytes(pending[:CHUNK_BYTES]), False)
        del pending[:CHUNK_BYTES]
    trailer = {"sha256": digest.hexdigest(), "payload_bytes": total}
    emit(json.dumps(trailer, sort_keys=True).encode(), True)
    return trailer


def read_header(src: BinaryIO) -> tuple[dict[str, Any], bytes]:
    """The header and its raw bytes; ``backup.corrupt`` when it is not an archive."""
    start = src.read(8)
    if len(start) < 8 or start[:4] != MAGIC:
        raise BackupError("backup.corrupt", reason="not a Piyasa backup")
    (size,) = struct.unpack(">I", start[4:])
    if size > MAX_HEADER:
        raise BackupError("backup.corrupt", reason="header too large")
    raw = src.read(size)
    try:
        header = json.loads(raw)
    except ValueError:
        raise BackupError("backup.corrupt", reason="unreadable header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise BackupError("backup.corrupt", reason="unknown format")
    return header, raw


def _data_key(header: dict[str, Any], secret_keys: Sequence[str], passphrase: str | None) -> bytes:
    salt = _unb64(header["salt"])
    wraps = header.get("wraps") or {}
    if passphrase and "passphrase" in wraps:
        found = _unwrap(passphrase_kek(passphrase, salt), wraps["passphrase"], "passphrase")
        if found:
            return found
    if "secret" in wraps:
        for key in secret_keys:
            found = _unwrap(secret_kek(key, salt), wraps["secret"], "secret")
            if found:
                return found
    raise BackupError("backup.wrong_key")


def unpack(
    src: BinaryIO,
    *,
    secret_key: str,
    passphrase: str | None = None,
    tick: Tick | None = None,
) -> Iterator[bytes]:
    """Yield the payload, block by block, after checking every chunk's tag; at the end
    the payload's sha256 and length are checked against the trailer. Raises
    ``backup.corrupt`` (tampered, truncated, trailing bytes) or ``backup.wrong_key``."""
    header, raw = read_header(src)
    header_hash = hashlib.sha256(raw).digest()
    aes = AESGCM(_data_key(header, split_keys(secret_key), passphrase))
    prefix = _unb64(header["nonce"])
    dobj = zstandard.ZstdDecompressor().decompressobj()
    digest = hashlib.sha256()
    total = 0
    counter = 0
    while True:
        size_raw = src.read(4)
        if len(size_raw) < 4:
            raise BackupError("backup.corrupt", reason="truncated")
        (size,) = struct.unpack(">I", size_raw)
        if size > CHUNK_BYTES * 2 + 64:
            raise BackupError("backup.corrupt", reason="bad chunk length")
        ct = src.read(size)
        if len(ct) < size:
            raise BackupError("backup.corrupt", reason="truncated")
        nonce = _nonce(prefix, counter)
        try:
            data = aes.decrypt(nonce, ct, _aad(header_hash, counter, False))
            final = False
        except InvalidTag:
            try:
                data = aes.decrypt(nonce, ct, _aad(header_hash, counter, True))
                final = True
            except InvalidTag:
                raise BackupError("backup.corrupt", reason=f"chunk {counter} altered") from None
        counter += 1
        if final:
            break
        try:
            block = dobj.decompress(data)
        except zstandard.ZstdError:
            raise BackupError("backup.corrupt", reason="bad compression") from None
        if block:
            digest.update(block)
            total += len(block)
            if tick:
                tick(total)
            yield block
    if src.read(1):
        raise BackupError("backup.corrupt", reason="trailing bytes")
    trailer = json.loads(data)
    if trailer.get("sha256") != digest.hexdigest() or trailer.get("payload_bytes") != total:
        raise BackupError("backup.corrupt", reason="checksum mismatch")


def unpack_to(
    archive: Path,
    dest: Path,
    *,
    secret_key: str,
    passphrase: str | None = None,
    tick: Tick | None = None,
) -> None:
    """Decrypt ``archive`` into ``dest`` (fsynced); ``dest`` is removed on any failure."""
    try:
        with archive.open("rb") as src, dest.open("wb") as out:
            for block in unpack(src, secret_key=secret_key, passphrase=passphrase, tick=tick):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def check(
    archive: Path, *, secret_key: str, passphrase: str | None = None, tick: Tick | None = None
) -> None:
    """Decrypt and checksum the whole archive, keeping nothing."""
    with archive.open("rb") as src:
        for _ in unpack(src, secret_key=secret_key, passphrase=passphrase, tick=tick):
            pass
