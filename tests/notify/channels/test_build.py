"""build_channel refuses configurations that cannot work with a clear error in both
languages, and never puts a secret in an error or a repr."""

from __future__ import annotations

import re

import pytest

from chatops import i18n
from piyasa.admin.notify.channels import ChannelConfigError, Problem, build_channel
from piyasa.admin.notify.channels.problems import EN

EMAIL = {"host": "smtp.example.test", "from": "p@example.test", "to": "ops@example.test"}


@pytest.mark.parametrize(
    ("kind", "config", "key"),
    [
        ("sms", {}, "unknown_kind"),
        ("email", {**EMAIL, "colour": "red"}, "unknown_option"),
        ("email", {**EMAIL, "host": ""}, "missing"),
        ("email", {k: v for k, v in EMAIL.items() if k != "to"}, "missing"),
        ("email", {**EMAIL, "to": "ops@example.test, nobody"}, "bad_address"),
        ("email", {**EMAIL, "port": "99999"}, "bad_number"),
        ("email", {**EMAIL, "starttls": "maybe"}, "bad_bool"),
        ("email", {**EMAIL, "tls": "true", "starttls": "true"}, "tls_and_starttls"),
        ("webhook", {"url": "gopher://x.test/", "secret": "s"}, "bad_url_scheme"),
        ("webhook", {"url": "https:///path", "secret": "s"}, "bad_url_host"),
        ("apprise", {"url": "nosuch://abc"}, "bad_apprise_url"),
    ],
)
def test_bad_configuration_is_refused_with_its_reason(
    kind: str, config: dict[str, str], key: str
) -> None:
    with pytest.raises(ValueError) as caught:
        build_channel(kind, "ops", config)
    assert isinstance(caught.value, ChannelConfigError)
    assert caught.value.problem.key == key
    # said in Turkish too, from the chat catalogue
    turkish = i18n.t("tr", caught.value.problem.catalog_key, **caught.value.problem.params)
    assert turkish != caught.value.problem.catalog_key and turkish != str(caught.value)


def test_a_bad_name_is_refused() -> None:
    with pytest.raises(ValueError, match="a channel needs a name"):
        build_channel("email", "bad name!", EMAIL)


def test_the_catalogues_say_every_problem_and_english_matches() -> None:
    en, tr = i18n.catalog("en"), i18n.catalog("tr")
    for key, text in EN.items():
        assert en[f"notify.channels.{key}"] == text, key
        placeholders = set(re.findall(r"{(\w+)", text))
        assert set(re.findall(r"{(\w+)", tr[f"notify.channels.{key}"])) == placeholders, key


def test_problem_is_a_string_with_its_key() -> None:
    problem = Problem("http_status", host="hooks.example.test", status=503)
    assert problem == "hooks.example.test answered HTTP 503"
    assert problem.catalog_key == "notify.channels.http_status"
    assert i18n.t("tr", problem.catalog_key, **problem.params) == (
        "hooks.example.test HTTP 503 yanıtını verdi"
    )


def test_reprs_hold_no_secret() -> None:
    mail = build_channel("email", "m", {**EMAIL, "username": "u", "password": "hunter2-pass"})
    hook = build_channel(
        "webhook", "w", {"url": "https://h.example.test/T0KEN-in-path", "secret": "whsec-xyz-123"}
    )
    for channel in (mail, hook):
        assert not {"hunter2-pass", "T0KEN-in-path", "whsec-xyz-123"} & set(
            re.findall(r"[\w-]+", repr(channel))
        )


def test_secrets_are_redacted_from_logs_even_in_library_messages() -> None:
    """Apprise logs an unparseable URL whole ("Unparseable URL …"); the channel registers
    the URL with the log redactor first, so what reaches the log file is masked."""
    from piyasa.logs import clean

    url = "nosuch://TOKEN-9f8e7d6c5b4a/abc"
    with pytest.raises(ValueError):
        build_channel("apprise", "x", {"url": url})
    assert "TOKEN-9f8e7d6c5b4a" not in clean(f"Unparseable URL {url}")
    secret = "whsec-never-logged-42"
    build_channel("webhook", "w", {"url": "https://h.example.test/in", "secret": secret})
    assert secret not in clean(f"signing with {secret}")
