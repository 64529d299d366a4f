"""The knowledge base's content: every entry complete in tr and en, every topic issue 17
names covered, each signature recognising its real error text and none of its
neighbours', fixes that are existing actions, and content flaws refused at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops.commands import load_all
from chatops.commands.kb import FIX_BUTTONS
from piyasa.help import kb
from piyasa.help.kb import FIXES, LANGS, ContentError, knowledge_base, load, match
from tests.help.real_errors import REAL

KB = knowledge_base()

# issue 17, item 3: the topics the knowledge base must cover at least, by entry
TOPICS = {
    "429 Too Many Requests": "tg-429",
    "409 conflict": "tg-409-conflict",
    "webhook set": "tg-webhook-active",
    "401 token revoked": "tg-401-unauthorized",
    "403 bot kicked": "tg-403-kicked",
    "403 bot blocked": "tg-403-blocked",
    "400 chat not found": "tg-chat-not-found",
    "400 chat migrated": "tg-chat-migrated",
    "message too long": "tg-message-too-long",
    "can't parse entities": "tg-parse-entities",
    "LLM invalid key": "llm-invalid-key",
    "LLM quota": "llm-quota",
    "LLM model not found": "llm-model-not-found",
    "LLM timeout": "llm-timeout",
    "LLM 5xx": "llm-5xx",
    "database locked": "db-locked",
    "connection refused (PostgreSQL)": "db-pg-refused",
    "connection refused (Redis)": "redis-refused",
    "disk full": "system-disk-full",
    "out of memory": "system-oom",
    "clock skew breaking TOTP": "system-clock-skew",
    "TOTP refused": "security-totp-rejected",
    "Slack invalid signature": "slack-invalid-signature",
    "Slack not in channel": "slack-not-in-channel",
    "Slack rate limited": "slack-ratelimited",
    "backups failing": "backup-failed",
    "alerts with no destination": "alerts-no-destination",
}


def test_at_least_forty_entries_every_topic_of_the_issue() -> None:
    assert len(KB.entries) >= 40
    missing = {topic: eid for topic, eid in TOPICS.items() if eid not in KB.entries}
    assert not missing


@pytest.mark.parametrize("lang", LANGS)
def test_every_entry_complete_in_each_language(lang: str) -> None:
    problems = []
    for e in KB.entries.values():
        w = e.words[lang]
        if not (w.title and w.symptoms and w.cause and w.steps and all(w.steps)):
            problems.append(e.id)
        if not e.signatures or e.category not in KB.categories:
            problems.append(e.id)
        if not KB.category_title(e.category, lang):
            problems.append(e.category)
    assert not problems


def test_the_two_languages_are_not_copies() -> None:
    same = [e.id for e in KB.entries.values() if e.words["tr"].cause == e.words["en"].cause]
    assert not same
    steps = [
        e.id for e in KB.entries.values() if len(e.words["tr"].steps) != len(e.words["en"].steps)
    ]
    assert not steps  # a step added in one language only


def test_every_entry_has_a_real_error_text() -> None:
    assert set(KB.entries) == {eid for _text, eid in REAL}


@pytest.mark.parametrize(("text", "want"), REAL, ids=[f"{w}-{i}" for i, (_t, w) in enumerate(REAL)])
def test_signature_recognises_its_text_and_no_neighbour_does(text: str, want: str) -> None:
    found = match(text, limit=len(KB.entries))
    assert [e.id for e, _score in found] == [want]
    assert found[0][1] > 0


def test_text_nobody_recognises_matches_nothing() -> None:
    for text in ("", "all good", "x" * 30_000, "Bad Request", "error", "Connection refused"):
        assert match(text) == [], text


def test_every_fix_is_an_existing_action_and_related_entries_exist() -> None:
    registry = load_all()
    assert set(FIX_BUTTONS) == set(FIXES)
    used = {e.fix for e in KB.entries.values() if e.fix}
    assert used <= set(FIXES) and len(used) >= 5
    actions = {
        "health.reset",
        "health.restart",
        "health.clear_cache",
        "health.run_checks",
        "settings.edit",
        "diagnose.fix",  # h17fix: a settings fix, previewed, checked on Apply, undoable
    }
    assert all(registry.get(a) is not None for a in actions)
    for e in KB.entries.values():
        assert all(r in KB.entries and r != e.id for r in e.related), e.id


def _tree(tmp_path: Path, entry: str) -> Path:
    (tmp_path / "kb").mkdir()
    (tmp_path / "categories.yaml").write_text("telegram: {en: Telegram, tr: Telegram}\n")
    (tmp_path / "kb" / "one.yaml").write_text(entry)
    return tmp_path


GOOD = """
- id: one
  category: telegram
  signatures: ['chat not found']
  fix: null
  related: []
  en: {title: T, symptoms: S, cause: C, steps: [a]}
  tr: {title: T, symptoms: S, cause: C2, steps: [a]}
"""


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("  tr: {title: T, symptoms: S, cause: C2, steps: [a]}\n", ""), "[tr]: missing"),
        (("cause: C2", "cause: ''"), "cause missing"),
        (("steps: [a]}", "steps: []}"), "steps must be a non-empty list"),
        (("category: telegram", "category: fax"), "unknown category"),
        (("fix: null", "fix: reboot_universe"), "unknown fix"),
        (("related: []", "related: [nobody]"), "unknown related"),
        (("['chat not found']", "['(unclosed']"), "bad pattern"),
        (("signatures: ['chat not found']", "signatures: []"), "no signatures"),
    ],
)
def test_flawed_content_is_refused_naming_file_and_entry(tmp_path: Path, change, says) -> None:  # type: ignore[no-untyped-def]
    old, new = change
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(ContentError) as err:
        load(_tree(tmp_path, text))
    assert says in str(err.value) and "one.yaml" in str(err.value)


def test_good_content_loads_and_a_duplicate_id_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path, GOOD)
    assert list(load(root).entries) == ["one"]
    (root / "kb" / "two.yaml").write_text(GOOD)
    with pytest.raises(ContentError, match="one defined twice"):
        kb.load(root)
