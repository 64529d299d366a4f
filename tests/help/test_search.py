"""The shared help search: typo-tolerant, Turkish-aware (İ/ı, ş/s, ğ/g, ç/c, ö/o, ü/u,
case), ranked, the reader's language first, and calm about empty, odd and huge queries."""

from __future__ import annotations

import pytest

from chatops import help_search
from piyasa.help.search import fold, terms

INDEX = help_search.index()


def top(query: str, lang: str = "en", kind: str = "kb") -> list[str]:
    return [h.doc.ref for h in INDEX.search(query, lang, limit=10) if h.doc.kind == kind][:3]


def test_fold_is_turkish_aware() -> None:
    assert fold("İSTANBUL ışık ŞİFRE Ğ ç Ö ü") == "istanbul isik sifre g c o u"
    assert fold("VERİTABANI") == fold("veritabanı") == fold("veritabani") == "veritabani"
    assert terms("  Bağlantı  REDDEDİLDİ!! a ") == ["baglanti", "reddedildi"]


@pytest.mark.parametrize(
    ("query", "lang", "want"),
    [
        ("database locked", "en", "db-locked"),
        ("databse lockd", "en", "db-locked"),  # two typos
        ("veritabanı kilitli", "tr", "db-locked"),
        ("VERİTABANI KİLİTLİ", "tr", "db-locked"),
        ("veritabani kilitli", "tr", "db-locked"),  # typed without Turkish letters
        ("disk dolu", "tr", "system-disk-full"),
        ("yedekleme başarısız", "tr", "backup-failed"),
        ("yedekleme basarisiz", "tr", "backup-failed"),
        ("kota", "tr", "llm-quota"),
        ("quota", "en", "llm-quota"),
        ("webhok", "en", "tg-webhook-active"),
        ("saat kayması totp", "tr", "system-clock-skew"),
        ("uygulama kanalda değil", "tr", "slack-not-in-channel"),
        ("uygulama kanalda degil", "tr", "slack-not-in-channel"),
        ("bot gruptan çıkarılmış", "tr", "tg-403-kicked"),
        ("bot gruptan cikarilmis", "tr", "tg-403-kicked"),
        ("Bad Request: chat not found", "tr", "tg-chat-not-found"),  # a pasted error
        ("Too Many Requests: retry after 5", "en", "tg-429"),
    ],
)
def test_finds_the_entry(query: str, lang: str, want: str) -> None:
    assert top(query, lang)[:1] == [want], top(query, lang)


def test_results_are_in_the_readers_language() -> None:
    hits = INDEX.search("disk", "tr")
    assert hits and {h.doc.lang for h in hits} == {"tr"}
    # a word only the other language has still finds something, in that language
    hits = INDEX.search("dolu", "en")
    assert hits and hits[0].doc.ref == "system-disk-full"


def test_commands_are_found_by_their_help() -> None:
    assert "settings" in top("fleet-wide settings", "en", kind="cmd")
    assert "kb" in top("bilgi bankası", "tr", kind="cmd")


@pytest.mark.parametrize(
    "query", ["", "   ", "!!!", '"*^:()', "a", "qwxzvbnm", "x" * 10_000, "NEAR(zq qz)", "zq"]
)
def test_empty_odd_or_huge_queries_give_an_empty_list_not_an_error(query: str) -> None:
    assert INDEX.search(query, "en") == []


def test_fts_operators_typed_as_words_are_words() -> None:
    assert top("NOT chat not found", "en")[:1] == ["tg-chat-not-found"]
