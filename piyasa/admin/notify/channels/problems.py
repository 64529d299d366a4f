"""What a channel says is wrong, as translatable phrases.

A configuration or delivery problem is a :class:`Problem`: a ``str`` (its English text, so
``check()`` can keep returning ``list[str]`` and logs read well) that also carries its
catalogue key and figures, so a surface can say it in the reader's language with
``t(lang, problem.catalog_key, **problem.params)``. The catalogues are
``chatops/locales/<lang>/notify_channels.json`` (keys ``notify.channels.<key>``); their
English text equals :data:`EN` (tests/notify/channels/test_build.py checks). Figures never
hold a secret: a password, a webhook secret or an Apprise URL's tokens are never put in one.
"""

from __future__ import annotations

from typing import Any

EN: dict[str, str] = {
    "unknown_kind": "unknown channel kind {kind!r}: use email, webhook or apprise",
    "bad_name": "a channel needs a name of 1-64 letters, digits, '-' or '_' (got {name!r})",
    "missing": "channel {name}: {field} is required",
    "unknown_option": "channel {name}: unknown option {field!r} (known: {known})",
    "bad_bool": "channel {name}: {field} must be true or false (got {value!r})",
    "bad_number": "channel {name}: {field} must be a number from {low} to {high} (got {value!r})",
    "bad_address": "channel {name}: {field} holds {value!r}, which is not an email address",
    "tls_and_starttls": "channel {name}: choose tls (port 465) or starttls (port 587), not both",
    "bad_url_scheme": "channel {name}: the webhook URL must start with http:// or https:// (got {scheme!r})",
    "bad_url_host": "channel {name}: the webhook URL has no host",
    "bad_apprise_url": "channel {name}: Apprise does not understand this {scheme}:// URL — see the Apprise wiki for its form",
    "unreachable": "cannot reach {host}:{port}: {error} — check the host and port of channel {name}, and that the server is running",
    "starttls_missing": "{host}:{port} does not offer STARTTLS — set tls=true for port 465, or starttls=false if the server is trusted without encryption",
    "tls_failed": "TLS with {host}:{port} failed: {error} — check the certificate (ca_file) and the tls/starttls options",
    "auth_unsupported": "{host}:{port} offers no login (AUTH) — remove username/password or use the submission port with starttls",
    "auth_failed": "{host}:{port} refused the login of {username}: {error} — check the username and password",
    "smtp_refused": "{host}:{port} refused the message: {code} {error}",
    "smtp_error": "{host}:{port} answered {code} {error}",
    "http_status": "{host} answered HTTP {status}",
    "http_refused": "{host} refused the request: HTTP {status} — check the URL and the receiver's configuration",
    "apprise_failed": "the {scheme}:// service did not accept the notification (see the log for Apprise's reason)",
}


class Problem(str):
    """A problem's English text, with ``key`` and ``params`` for translation."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, **params: Any) -> Problem:
        """Raises KeyError for a key :data:`EN` does not know (a typo would otherwise
        only show in the chat)."""
        text = EN[key].format(**params)
        self = super().__new__(cls, text)
        self.key = key
        self.params = params
        return self

    @property
    def catalog_key(self) -> str:
        """The chat catalogue key: ``notify.channels.<key>``."""
        return f"notify.channels.{self.key}"


class ChannelConfigError(ValueError):
    """A channel configuration that cannot work; ``problem`` says why, translatably."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem
