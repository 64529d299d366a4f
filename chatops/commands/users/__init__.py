"""User management from chat: /users (list, card, bulk), /adduser (dialog), /deluser,
and the self-service /mfa and /password.

Data comes from :mod:`piyasa.admin.users`, which enforces the safety rules for every
surface; this package only turns it into Views. The list's whole state (search, filters,
sort, page size, page, selection) travels in the server-side button params, so every
press re-renders from the database and a stale button can only show fresh data.
Secrets (temporary passwords, API keys, TOTP seeds) are shown once, in a new private
message with ``protect`` (never by editing a message that was sent unprotected).

Modules: ``common`` (helpers), ``listing`` (/users), ``card`` (the card and its actions),
``sessions`` (sessions, delete, /deluser), ``bulk``, ``adduser`` (the dialog) and
``selfservice`` (/mfa, /password). Importing the package declares them all.
"""

from __future__ import annotations

from chatops.commands.users import adduser, bulk, card, listing, selfservice, sessions
from chatops.commands.users.common import against_other_admin, ago

__all__ = [
    "adduser",
    "against_other_admin",
    "ago",
    "bulk",
    "card",
    "listing",
    "selfservice",
    "sessions",
]
