"""Backups from chat: /backup (schedule, list, card, Backup now, Test backup, Verify,
Download, Delete, the schedule editor) and the ``restore`` wizard.

Modules: ``common`` (the service, refusals, sizes, progress), ``views`` (the overview and
the card), ``command`` (/backup and its operator actions), ``edit`` (the admin dialog:
schedule and typed Delete), ``restore`` (the wizard). Importing the package declares them.
"""

from __future__ import annotations

from chatops.commands.backup import command, edit, restore

__all__ = ["command", "edit", "restore"]
