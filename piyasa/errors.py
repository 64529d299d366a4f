"""The base of every error whose message alone tells the operator what to do."""


class UserFacingError(Exception):
    """Shown as one line (CLI) or one message (chat); never with a traceback."""
