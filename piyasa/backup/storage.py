"""Where archives live: a local directory (default ``DATA_DIR/backups``, mode 0700) or an
S3-compatible bucket.

Each backup is two objects: the archive ``<id>`` and its manifest ``<id>.json``. The
manifest is written only after the archive is complete (local: written under a ``.partial``
name, fsynced, renamed; S3: a multipart upload, which appears only on completion), and a
backup is listed only by its manifest, so a partial archive is never listed. Deleting
removes the manifest first. Leftover ``.partial`` files are swept on the next listing.

S3 settings (environment or the data dir's config file): ``PIYASA_BACKUP_S3_BUCKET``
(turns S3 on), ``PIYASA_BACKUP_S3_URL`` (endpoint, for MinIO/R2/...; empty = AWS),
``PIYASA_BACKUP_S3_PREFIX`` (default ``piyasa/``), ``PIYASA_BACKUP_S3_REGION``,
``PIYASA_BACKUP_S3_ACCESS_KEY``, ``PIYASA_BACKUP_S3_SECRET_KEY``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from piyasa.backup.model import BackupError

PARTIAL = ".partial"
META = ".json"
STALE_PARTIAL_S = 6 * 3600  # a .partial this old belongs to a dead process


class Storage(Protocol):
    name: str

    def put(self, archive: Path, backup_id: str, meta: dict[str, Any]) -> None: ...
    def metas(self) -> list[dict[str, Any]]: ...
    def meta(self, backup_id: str) -> dict[str, Any] | None: ...
    def set_meta(self, backup_id: str, meta: dict[str, Any]) -> None: ...
    def fetch(self, backup_id: str) -> Path: ...
    def release(self, path: Path) -> None: ...
    def delete(self, backup_id: str) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + PARTIAL)
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class LocalStorage:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)

    def staging(self, backup_id: str) -> Path:
        """Where an archive is written before it is complete (same filesystem: rename)."""
        return self.root / (backup_id + PARTIAL)

    def put(self, archive: Path, backup_id: str, meta: dict[str, Any]) -> None:
        final = self.root / backup_id
        os.chmod(archive, 0o600)
        if archive != final:
            os.replace(archive, final)
        _fsync_dir(self.root)
        write_atomic(self.root / (backup_id + META), json.dumps(meta, sort_keys=True).encode())

    def metas(self) -> list[dict[str, Any]]:
        out = []
        now = time.time()
        for path in self.root.iterdir():
            if path.name.endswith(PARTIAL):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > STALE_PARTIAL_S:
                        path.unlink()
                continue
            if path.name.endswith(META) and (self.root / path.name[: -len(META)]).exists():
                with contextlib.suppress(OSError, ValueError):
                    out.append(json.loads(path.read_bytes()))
        return out

    def meta(self, backup_id: str) -> dict[str, Any] | None:
        path = self.root / (backup_id + META)
        if "/" in backup_id or not path.exists() or not (self.root / backup_id).exists():
            return None
        return json.loads(path.read_bytes())

    def set_meta(self, backup_id: str, meta: dict[str, Any]) -> None:
        write_atomic(self.root / (backup_id + META), json.dumps(meta, sort_keys=True).encode())

    def fetch(self, backup_id: str) -> Path:
        return self.root / backup_id

    def release(self, path: Path) -> None:
        """Nothing to clean: the archive is the stored file itself."""

    def delete(self, backup_id: str) -> None:
        (self.root / (backup_id + META)).unlink(missing_ok=True)
        (self.root / backup_id).unlink(missing_ok=True)


class S3Storage:
    """An S3-compatible bucket through boto3 (multipart uploads are atomic: the object
    exists only once the upload completes)."""

    name = "s3"

    def __init__(self, settings: Mapping[str, str], cache_dir: Path) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = settings["PIYASA_BACKUP_S3_BUCKET"]
        prefix = settings.get("PIYASA_BACKUP_S3_PREFIX", "piyasa/")
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.cache = cache_dir
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.get("PIYASA_BACKUP_S3_URL") or None,
            region_name=settings.get("PIYASA_BACKUP_S3_REGION") or "us-east-1",
            aws_access_key_id=settings.get("PIYASA_BACKUP_S3_ACCESS_KEY") or None,
            aws_secret_access_key=settings.get("PIYASA_BACKUP_S3_SECRET_KEY") or None,
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}),
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise BackupError("backup.storage", error=f"S3 {code}") from None
        except BotoCoreError as exc:
            raise BackupError("backup.storage", error=type(exc).__name__) from None

    def staging(self, backup_id: str) -> Path:
        return self.cache / (backup_id + PARTIAL)

    def put(self, archive: Path, backup_id: str, meta: dict[str, Any]) -> None:
        try:
            self._call(self.client.upload_file, str(archive), self.bucket, self.prefix + backup_id)
            self.set_meta(backup_id, meta)
        finally:
            archive.unlink(missing_ok=True)

    def metas(self) -> list[dict[str, Any]]:
        names: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)))
        for page in pages:
            for obj in page.get("Contents", []):
                names.add(obj["Key"][len(self.prefix) :])
        out = []
        for name in names:
            if name.endswith(META) and name[: -len(META)] in names:
                found = self.meta(name[: -len(META)], check_archive=False)
                if found:
                    out.append(found)
        return out

    def meta(self, backup_id: str, *, check_archive: bool = True) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + backup_id + META)
            if check_archive:
                self.client.head_object(Bucket=self.bucket, Key=self.prefix + backup_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise BackupError("backup.storage", error="S3") from None
        return json.loads(body["Body"].read())

    def set_meta(self, backup_id: str, meta: dict[str, Any]) -> None:
        self._call(
            self.client.put_object,
            Bucket=self.bucket,
            Key=self.prefix + backup_id + META,
            Body=json.dumps(meta, sort_keys=True).encode(),
            ContentType="application/json",
        )

    def fetch(self, backup_id: str) -> Path:
        dest = self.cache / backup_id
        tmp = self.cache / (backup_id + PARTIAL)
        self._call(self.client.download_file, self.bucket, self.prefix + backup_id, str(tmp))
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
        return dest

    def release(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def open_stream(self, backup_id: str) -> tuple[Any, int]:
        """The archive's body straight from the bucket (``.read(n)``, ``.close()``) and
        its length in bytes, for streaming a download without a local copy."""
        found = self._call(self.client.get_object, Bucket=self.bucket, Key=self.prefix + backup_id)
        return found["Body"], int(found["ContentLength"])

    def delete(self, backup_id: str) -> None:
        self._call(
            self.client.delete_object, Bucket=self.bucket, Key=self.prefix + backup_id + META
        )
        self._call(self.client.delete_object, Bucket=self.bucket, Key=self.prefix + backup_id)


def make_storage(settings: Any) -> LocalStorage | S3Storage:
    """S3 when ``PIYASA_BACKUP_S3_BUCKET`` is set, else the local directory
    (``PIYASA_BACKUP_DIR``, default ``DATA_DIR/backups``)."""
    extra = dict(settings.extra)
    local_root = Path(extra.get("PIYASA_BACKUP_DIR") or Path(settings.data_dir) / "backups")
    if extra.get("PIYASA_BACKUP_S3_BUCKET"):
        return S3Storage(extra, local_root / ".s3-cache")
    return LocalStorage(local_root)
