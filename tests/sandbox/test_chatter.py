"""The offline chatter generator that stands in for the LLM in demo mode."""

from __future__ import annotations

import re

import pytest

from piyasa.sandbox.chatter import (
    STYLES,
    TOPICS,
    OfflineGenerator,
    detect_language,
    detect_persona,
    detect_topic,
)

# Names each topic's messages are about (Turkish and English spellings).
TOPIC_WORDS = {
    "bist": ("BIST", "THYAO", "ASELS", "GARAN", "EREGL", "AKBNK", "KCHOL", "TUPRS"),
    "fx": ("USD/TRY", "EUR/TRY", "EUR/USD", "altın", "gold", "DXY"),
    "crypto": ("BTC", "ETH", "SOL", "kripto", "crypto"),
    "macro": ("TCMB", "CBRT", "enflasyon", "inflation", "Fed", "CDS", "10"),
}


def mentions_topic(text: str, topic: str) -> bool:
    return any(word.lower() in text.lower() for word in TOPIC_WORDS[topic])


HUMAN_CLAIMS = re.compile(
    r"ben insanım|gerçek bir insan|bot değilim|i am human|i'm human|as a human|"
    r"i am not a bot|i'm not a bot|real person",
    re.IGNORECASE,
)
ADVICE = re.compile(
    r"\b(?:hemen al|satın al|kesin al|buy now|you should buy|sell now)\b", re.IGNORECASE
)


@pytest.mark.parametrize("language", ["tr", "en"])
@pytest.mark.parametrize("topic", TOPICS)
def test_each_topic_and_language(topic: str, language: str) -> None:
    gen = OfflineGenerator(seed=3)
    for _ in range(30):
        text = gen.generate({"style": "teknik"}, topic, language=language)
        assert 1 <= len(text) <= 400
        assert mentions_topic(text, topic), text
        assert detect_language(text) == language, text


def test_same_seed_same_output_different_seed_differs() -> None:
    def run(seed: int) -> list[str]:
        gen = OfflineGenerator(seed=seed)
        return [gen.generate(None, t, language=lang) for t in TOPICS for lang in ("tr", "en")]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_length_bounds_and_responsible_content_over_many_outputs() -> None:
    gen = OfflineGenerator(seed=11)
    long_reply = "THYAO " + "çok uzun bir mesaj " * 100
    history = ["BTC düştü", "ETH yatay", "x" * 5000]
    for i in range(600):
        text = gen.generate(
            {"style": STYLES[i % 4], "footer": i % 5 == 0},
            TOPICS[i % 4],
            history=history,
            language=("tr", "en")[i % 2],
            reply_to=long_reply if i % 3 == 0 else None,
        )
        assert text.strip()
        assert 1 <= len(text) <= 400
        assert not HUMAN_CLAIMS.search(text), text
        assert not ADVICE.search(text), text
        if "tavsiye" in text:
            assert "yatırım tavsiyesi değildir" in text


def test_reply_references_the_message_replied_to() -> None:
    gen = OfflineGenerator(seed=5)
    for _ in range(10):
        assert "THYAO" in gen.generate(None, "bist", reply_to="THYAO bugün sert düştü")
        assert "USD/TRY" in gen.generate(None, "fx", language="en", reply_to="USD/TRY new high?")


def test_persona_footer_adds_disclaimer() -> None:
    gen = OfflineGenerator(seed=1)
    assert "(yatırım tavsiyesi değildir)" in gen.generate({"footer": True}, "bist")
    assert "(not investment advice)" in gen.generate({"footer": True}, "fx", language="en")


def test_unknown_topic_and_style_still_produce_text() -> None:
    gen = OfflineGenerator(seed=1)
    assert gen.generate({"style": "whatever"}, "weather", language="de")


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Konu: BIST. Kısa yaz.", "bist"),
        ("Topic: crypto", "crypto"),
        ("konu=kripto; dün BIST, BIST ve BIST düştü", "crypto"),
        ("KONU: DÖVİZ", "fx"),
        ("TCMB faiz kararı ve enflasyon", "macro"),
        ("USD/TRY ve EUR/TRY yükseldi", "fx"),
        ("BTC ile ETH ayrıştı", "crypto"),
        ("THYAO ve GARAN", "bist"),
        ("Merhaba, nasılsın?", None),
    ],
)
def test_detect_topic(text: str, topic: str | None) -> None:
    assert detect_topic(text) == topic


def test_detect_language_and_persona() -> None:
    assert detect_language("Language: en. Sen bir botsun") == "en"
    assert detect_language("Piyasa bugün çok sakin") == "tr"
    assert detect_language("The market is quiet today") == "en"
    assert detect_persona("Persona: Deniz. Stil: temkinli") == {
        "name": "Deniz",
        "style": "temkinli",
    }
    assert detect_persona("Your name is Max, a technical analyst.")["style"] == "teknik"


def test_from_messages_follows_the_system_prompt() -> None:
    gen = OfflineGenerator(seed=9)
    en_crypto = [
        {
            "role": "system",
            "content": "You are Max, a cautious market bot. Topic: crypto. Language: en",
        },
        {"role": "user", "content": "Recent chat:\n- Ali: BTC is flying\nWrite your message."},
    ]
    tr_macro = [
        {"role": "system", "content": "Sen Deniz adlı iyimser bir piyasa botusun. Konu: makro."},
        {"role": "user", "content": "Yanıtla: Ayşe: TCMB faizi sabit tutar mı?"},
    ]
    for _ in range(10):
        text = gen.from_messages(en_crypto)
        assert detect_language(text) == "en"
        assert mentions_topic(text, "crypto")
        reply = gen.from_messages(tr_macro)
        assert detect_language(reply) == "tr"
        assert "TCMB" in reply


def test_from_messages_falls_back_without_hints() -> None:
    gen = OfflineGenerator(seed=2)
    assert gen.from_messages([{"role": "user", "content": "merhaba"}])
    assert gen.from_messages([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
