"""The limit model and the formatting parser, without HTTP."""

from __future__ import annotations

import pytest

from piyasa.sandbox.telegram import (
    ApiError,
    RateLimiter,
    SandboxLimits,
    TelegramSandbox,
    allowed_max,
)
from piyasa.sandbox.telegram.formatting import parse_html, parse_markdown_v2, utf16_len


def test_limits_are_the_documented_numbers() -> None:
    lim = SandboxLimits()
    assert (lim.chat_rate, lim.chat_burst) == (1.0, 3)
    assert (lim.group_max, lim.group_window) == (20, 60.0)
    assert (lim.bot_max, lim.bot_window) == (30, 1.0)


@pytest.mark.parametrize(
    ("chats", "bots", "seconds", "expected"),
    [
        ([-1], 1, 60, 20),  # one group, one minute: the 20/min window
        ([-1], 1, 61, 23),  # at t=60 the first burst of 3 has left the window
        ([1], 1, 10, 12),  # private chat: burst 3, then 1/s at t=1..9
        ([-1, -2], 3, 60, 120),  # limits are per bot
        (list(range(1, 41)), 1, 2, 60),  # 40 private chats: the 30/s per-bot cap binds
        ([1], 1, 0, 0),
    ],
)
def test_allowed_max(chats, bots, seconds, expected) -> None:
    assert allowed_max(SandboxLimits(), [(c, c < 0) for c in chats], bots, seconds) == expected


def test_allowed_max_follows_custom_limits() -> None:
    sb = TelegramSandbox(limits=SandboxLimits(group_max=5, chat_burst=1))
    assert sb.allowed_max([-5], bot_count=1, seconds=60) == 5


def test_refused_send_consumes_nothing() -> None:
    rl = RateLimiter()
    for _ in range(3):
        assert rl.wait(1, 7, False, 0.0) == 0.0
        rl.consume(1, 7, False, 0.0)
    assert rl.wait(1, 7, False, 0.0) == pytest.approx(1.0)
    assert rl.wait(1, 7, False, 0.5) == pytest.approx(0.5)
    assert rl.wait(1, 7, False, 1.0) == 0.0
    assert rl.wait(2, 7, False, 0.0) == 0.0  # another bot has its own budget


def test_html_entities_use_utf16_offsets() -> None:
    text, entities = parse_html("📈 <b>THYAO</b> <a href='https://x.y'>link</a>")
    assert text == "📈 THYAO link"
    assert entities[0] == {"type": "bold", "offset": 3, "length": 5}
    assert entities[1]["url"] == "https://x.y" and entities[1]["offset"] == 9
    assert utf16_len("📈") == 2


@pytest.mark.parametrize(
    "bad", ["<b>open", "</i>", "<b><i>x</b></i>", "<marquee>x</marquee>", "<span>x</span>"]
)
def test_malformed_html_is_rejected(bad: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_html(bad)
    assert exc.value.code == 400 and "can't parse entities" in exc.value.description


def test_markdown_v2_escapes_and_entities() -> None:
    text, entities = parse_markdown_v2(r"*Kur* 41\.2 _TL_ [kaynak](https://tcmb.gov.tr)")
    assert text == "Kur 41.2 TL kaynak"
    assert [e["type"] for e in entities] == ["bold", "italic", "text_link"]
    for bad in ["41.2", "*açık", "[a](b"]:
        with pytest.raises(ApiError):
            parse_markdown_v2(bad)
