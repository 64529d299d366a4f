"""User management: the one service behind /users, /adduser, the user card, bulk actions and
the break-glass ``piyasa user`` CLI.

Every change goes through here, so the safety rules hold on every surface:

* the last active (unlocked) admin can never be demoted, locked or deleted — checked inside
  the same transaction as the change, after locking the admin rows on PostgreSQL, so two
  admins demoting each other at once cannot both succeed;
* nobody locks themselves out: no self lock, self delete, self role change, self
  "terminate all", nor unlinking the chat account one is using right now;
* every change writes an audit row with ``before`` and ``after``; refusals are audited too;
* every change applies on the very next request of every process: database triggers move
  the principals version in the changing transaction (``piyasa.db.principals``), and a
  step-up elevation is ended in the same transaction as the lock, reset or revoke.

Secrets this package creates (temporary passwords, API keys, TOTP seeds) are returned to the
caller exactly once and never logged or audited.

The package: :mod:`.model` (limits, error, actor, summary), :mod:`.rules` (the safety
rules every change goes through), :mod:`.directory` (add, find, list, page), :mod:`.card`,
:mod:`.changes` (single-user changes, MFA, sessions) and :mod:`.bulk`. Import the service
from here; the submodules are its layout.
"""

from piyasa.admin.users.bulk import BulkPlan, bulk_apply, bulk_preview
from piyasa.admin.users.card import ApiKeyInfo, Card, IdentityInfo, card
from piyasa.admin.users.changes import (
    change_own_password,
    delete_user,
    mfa_begin,
    mfa_confirm,
    mfa_request,
    mfa_reset,
    new_api_key,
    regenerate_api_key,
    reset_password,
    revoke_api_key,
    revoke_elevation,
    set_locked,
    set_must_change,
    set_password,
    set_role,
    terminate_all,
    unlink_identity,
)
from piyasa.admin.users.directory import (
    UserPage,
    UserRow,
    add_user,
    admins_among,
    get_user,
    link_code_for,
    list_users,
    query_users,
    user_ids,
)
from piyasa.admin.users.model import (
    CLI,
    MIN_PASSWORD_LEN,
    PAGE_SIZES,
    SORTS,
    STATUSES,
    Actor,
    UserError,
    UserInfo,
    check_password,
    validate_username,
)

__all__ = [
    "CLI",
    "MIN_PASSWORD_LEN",
    "PAGE_SIZES",
    "SORTS",
    "STATUSES",
    "Actor",
    "ApiKeyInfo",
    "BulkPlan",
    "Card",
    "IdentityInfo",
    "UserError",
    "UserInfo",
    "UserPage",
    "UserRow",
    "add_user",
    "admins_among",
    "bulk_apply",
    "bulk_preview",
    "card",
    "change_own_password",
    "check_password",
    "delete_user",
    "get_user",
    "link_code_for",
    "list_users",
    "mfa_begin",
    "mfa_confirm",
    "mfa_request",
    "mfa_reset",
    "new_api_key",
    "query_users",
    "regenerate_api_key",
    "reset_password",
    "revoke_api_key",
    "revoke_elevation",
    "set_locked",
    "set_must_change",
    "set_password",
    "set_role",
    "terminate_all",
    "unlink_identity",
    "user_ids",
    "validate_username",
]
