"""Shared pieces of the /backup screens: the service, refusals, sizes, times, progress.

The service is :class:`piyasa.backup.service.BackupService`, reached through
:func:`piyasa.backup.service.backup_service` (``services.extras["backup"]``, built on first
use). Its refusals carry a catalogue key (``backup.*``, in ``chatops/locales/*/backup.json``)
and parameters; its progress callback gets a fraction 0..1 and the catalogue key of the
step (``backup.step.*``), which :class:`LiveProgress` shows by editing one message.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime

from chatops import i18n, timefmt
from chatops.context import Context, MessageRef
from chatops.views import Alert, View
from piyasa.backup.service import BackupError, BackupInfo, BackupService, backup_service

log = logging.getLogger(__name__)

MB = 1024 * 1024
PROGRESS_EDIT_EVERY_S = 1.0  # edits count against Telegram's ~1 message/s per chat
# The largest archive each surface sends as a file. Telegram: bots send documents up to
# 50 MB (Bot API, sendDocument: core.telegram.org/bots/api#senddocument; REFERENCE.md).
# Slack takes files up to 1 GB (files.getUploadURLExternal), but the upload is held in
# memory here, so chat downloads stop at 100 MB there. Larger ones: a one-time link for
# admins (chatops.commands.backup.link), the shell command for everyone.
DOWNLOAD_MAX = {"telegram": 50 * MB, "slack": 100 * MB}


def service(ctx: Context) -> BackupService:
    """The process's backup service (built on first use from ``ctx.services``)."""
    return backup_service(ctx.services)


def problem_text(ctx: Context, exc: BackupError) -> str:
    """A service refusal in the reader's language; the key is noted in the audit row."""
    ctx.audit_params["outcome"] = exc.key
    params = {k: str(v) for k, v in (exc.params or {}).items()}
    if i18n.has(exc.key):
        return ctx.t(exc.key, **params)
    return ctx.t("backup.err.other", reason=str(exc)[:200])


def problem(ctx: Context, exc: BackupError) -> Alert:
    return Alert("error", problem_text(ctx, exc))


def size_text(n: int) -> str:
    """Bytes as "12.3 MB" (MB = 2^20 bytes, as Telegram counts its 50 MB)."""
    if n < 100 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / MB:.1f} MB"


def rate_text(n: int, seconds: float) -> str:
    return f"{n / MB / max(seconds, 1e-3):.1f} MB/s"


def ago(ctx: Context, when: datetime | None) -> str:
    if when is None:
        return ctx.t("backup.never")
    return timefmt.ago(ctx.lang, when, just_now=ctx.t("backup.just_now"))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when_text(ctx: Context, when: datetime, tz: str = "UTC") -> str:
    """``when`` in the schedule's timezone, with CLDR's words for the reader's language:
    "Tue 1 Dec 03:00" / "Sal 1 Ara 03:00"."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return format_datetime(when, "EEE d MMM HH:mm", tzinfo=zone(tz), locale=ctx.lang)


def rows_total(info: BackupInfo) -> int:
    return sum(info.rows.values())


def marks(ctx: Context, info: BackupInfo) -> str:
    """✓ verified, 🧪 test-restored, ✗ neither yet."""
    out = ("✓" if info.verified_at else "✗") + ("🧪" if info.test_restored_at else "")
    return out


def kind_text(ctx: Context, kind: str) -> str:
    key = f"backup.kind.{kind}"
    return ctx.t(key) if i18n.has(key) else kind


def kept_text(ctx: Context, info: BackupInfo) -> str:
    if not info.kept_by:
        return ctx.t("backup.kept.none")
    return ", ".join(kind_text(ctx, rule) for rule in info.kept_by)


def step_text(ctx: Context, key: str) -> str:
    return ctx.t(key) if i18n.has(key) else ctx.t("backup.step.working")


class LiveProgress:
    """One message that shows the step and a percentage while long work runs.

    ``start`` sends it; the instance is the service's ``progress`` callback and edits it
    at most every :data:`PROGRESS_EDIT_EVERY_S` (and only when the words change);
    ``done`` edits it one last time. A chat that refuses an edit never stops the work."""

    def __init__(self, ctx: Context, title_key: str, **params: Any) -> None:
        self.ctx = ctx
        self.title = ctx.t(title_key, **params)
        self.ref: MessageRef | None = None
        self.last_edit = 0.0
        self.shown = ""
        self.started = time.monotonic()

    def _view(self, fraction: float, step: str) -> View:
        pct = max(0, min(100, int(fraction * 100)))
        text = self.ctx.t("backup.progress", step=step_text(self.ctx, step), pct=pct)
        return View(title=self.title, blocks=[Alert("info", text)])

    async def start(self) -> LiveProgress:
        self.started = time.monotonic()
        if self.ctx.responder is not None:
            view = self._view(0.0, "backup.step.starting")
            self.shown = view.plain_text()
            try:
                self.ref = await self.ctx.send(view)
            except Exception as exc:  # no progress message; the work still runs
                log.info("backup progress message not sent: %s", type(exc).__name__)
        return self

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def __call__(self, fraction: float, step: str) -> None:
        now = time.monotonic()
        if self.ref is None or now - self.last_edit < PROGRESS_EDIT_EVERY_S:
            return
        await self._edit(self._view(fraction, step))
        self.last_edit = now

    async def _edit(self, view: View) -> None:
        if self.ref is None or view.plain_text() == self.shown:
            return
        self.shown = view.plain_text()
        try:
            await self.ctx.edit(self.ref, view)
        except Exception as exc:  # Telegram 429 or a deleted message: the work goes on
            log.info("backup progress edit skipped: %s", type(exc).__name__)

    async def done(self, ok: bool = True) -> None:
        key = "backup.progress.done" if ok else "backup.progress.failed"
        view = View(title=self.title, blocks=[Alert("success" if ok else "error", self.ctx.t(key))])
        await self._edit(view)
