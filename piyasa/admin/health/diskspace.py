"""Free space for the data dir, against the filesystem and an optional quota.

An operator whose data dir lives on a shared disk, a volume with a project quota, or a
container with a size limit the filesystem does not show can set
``PIYASA_DISK_QUOTA_BYTES`` (a number of bytes, or with a ``K``/``M``/``G``/``T`` suffix,
powers of 1024: ``PIYASA_DISK_QUOTA_BYTES=20G``): the most the data dir (database,
logs, backups) may hold. Free space is then the smaller of the filesystem's free space and
the quota minus what the data dir holds (apparent file sizes, like
``du -s --apparent-size``), and the percent free is taken of the quota. The host health
probe, ``piyasa check`` and ``/diagnose`` all read it here, so a quota nearly used up is
"disk nearly full" (KB entry ``system-disk-full``) everywhere at once.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from piyasa.config import ConfigError

QUOTA_VAR = "PIYASA_DISK_QUOTA_BYTES"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class Space:
    """Room for the data dir, in bytes."""

    total: int  # the filesystem's size, or the quota when one is set
    free: int  # what can still be written before the filesystem or the quota is full
    quota: int | None = None  # PIYASA_DISK_QUOTA_BYTES, when set
    used: int | None = None  # what the data dir holds (measured only with a quota)

    @property
    def free_percent(self) -> float:
        """Free space as a percentage of ``total`` (100 when the size is unknown)."""
        return 100.0 * self.free / self.total if self.total else 100.0


def parse_quota(text: str | None) -> int | None:
    """``"20G"`` -> 21474836480; empty or absent -> None (no quota).

    Raises :class:`ConfigError` naming the variable for anything else, or a quota of zero.
    """
    raw = (text or "").strip().upper().removesuffix("IB").removesuffix("B")
    if not raw:
        return None
    unit = raw[-1] if raw[-1] in _UNITS and not raw[-1].isdigit() else ""
    number = raw[: len(raw) - len(unit)].strip()
    try:
        value = int(float(number) * _UNITS[unit])
    except (ValueError, OverflowError):
        value = -1
    if value <= 0:
        raise ConfigError(
            f"{QUOTA_VAR}={text!r}: write a positive size in bytes, e.g. 21474836480 or 20G"
        )
    return value


def quota_of(settings: Any) -> int | None:
    """The configured quota of ``settings`` (from the environment or the data dir's .env)."""
    extra = getattr(settings, "extra", None) or {}
    return parse_quota(extra.get(QUOTA_VAR))


def existing_dir(path: Path) -> str:
    """``path``, or its nearest existing parent (disk usage of the same filesystem)."""
    while not os.path.exists(path) and path != path.parent:
        path = path.parent
    return str(path)


def tree_bytes(root: Path) -> int:
    """Apparent size of every regular file under ``root`` (symlinks not followed)."""
    total = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        elif e.is_file(follow_symlinks=False):
                            total += e.stat(follow_symlinks=False).st_size
                    except OSError:  # removed while we looked (log rotation, temp files)
                        continue
        except OSError:
            continue
    return total


def data_dir_space(settings: Any) -> Space:
    """Room for ``settings.data_dir``; blocking (walks the data dir when a quota is set)."""
    data_dir = Path(settings.data_dir)
    fs = shutil.disk_usage(existing_dir(data_dir))
    quota = quota_of(settings)
    if quota is None:
        return Space(total=fs.total, free=fs.free)
    used = tree_bytes(data_dir) if data_dir.exists() else 0
    return Space(total=quota, free=max(0, min(fs.free, quota - used)), quota=quota, used=used)


__all__ = ["QUOTA_VAR", "Space", "data_dir_space", "existing_dir", "parse_quota", "quota_of"]
