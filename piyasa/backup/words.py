"""English words for backup refusals: the shell's messages, the schedule's last result and
the reason in backup events. Chat surfaces use the tr/en catalogues (``backup.*`` keys)."""

from __future__ import annotations

from typing import Any

MESSAGES = {
    "backup.unknown": "no backup by that id (see `piyasa backup list`)",
    "backup.corrupt": "the archive is damaged or incomplete ({reason}); nothing was changed",
    "backup.wrong_key": "this archive was made with another secret key; give its passphrase "
    "(PIYASA_BACKUP_PASSPHRASE or --passphrase-stdin)",
    "backup.newer_schema": "the backup comes from a newer Piyasa (schema {revision}); "
    "upgrade Piyasa first",
    "backup.busy": "another backup or restore is running; try again when it is done",
    "backup.storage": "the backup storage did not answer ({error})",
    "backup.tools_missing": "PostgreSQL client tools missing: {tools} (install postgresql-client)",
    "backup.tool_failed": "{tool} failed: {error}",
    "backup.disk_full": "the disk is full; the partial archive was removed",
    "backup.rows_mismatch": "the restored copy's row counts differ from the manifest; "
    "nothing was replaced",
    "backup.cross_needs_pg": "a PostgreSQL backup restores into SQLite through a scratch "
    "PostgreSQL server: set PIYASA_BACKUP_SCRATCH_URL (a user with CREATEDB)",
    "backup.copy_failed": "copying the backup into this database failed ({reason}); "
    "nothing was replaced",
    "backup.bad_time": "bad {kind} time {value!r} (daily HH:MM, weekly 'mon HH:MM', "
    "monthly '1 HH:MM')",
    "backup.bad_timezone": "unknown timezone {timezone!r} (e.g. Europe/Istanbul)",
    "backup.bad_retention": "retention for {rule} must be a whole number 0..1000",
    "backup.bad_kind": "unknown backup kind {kind!r}",
    "backup.unsupported_db": "this database cannot be backed up (in-memory SQLite)",
}


def error_text(exc: Any) -> str:
    """English text of a :class:`BackupError` (the chat uses the locale catalogues)."""
    template = MESSAGES.get(exc.key, exc.key)
    try:
        return template.format(**exc.params)
    except (KeyError, IndexError):
        return template
