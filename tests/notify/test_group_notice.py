"""A grouped notice of a storm stays one short message, worst first (chatops/alert_views.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from chatops.alert_views import GROUP_LINES, notice_view
from piyasa.admin.notify.store import Item

NOW = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def _item(i: int, severity: str) -> Item:
    return Item(
        id=i, fingerprint=f"backup:{i}", source="backup", severity=severity,
        title_key="alerts.backup.failed.title", body_key=None, params={"error": f"e{i}"},
        labels={}, state="open", first_seen=NOW, last_seen=NOW, count=1, acted_by=None,
        acted_at=None, snoozed_until=None, resolved_at=None,
    )  # fmt: skip


def test_a_storm_group_is_one_message_with_the_critical_first_and_the_rest_counted() -> None:
    items = [_item(i, "warning") for i in range(1, 40)] + [_item(99, "critical")]
    for lang, more in (("en", "and 25 more"), ("tr", "ve 25 bildirim daha")):
        text = notice_view(lang, items, "group", {}).plain_text()
        incident_lines = [ln for ln in text.splitlines() if "#" in ln]
        assert len(incident_lines) == GROUP_LINES == 15
        assert "#99 " in incident_lines[0]  # the critical one leads
        assert more in text


def test_a_small_group_lists_every_incident_and_no_more_line() -> None:
    items = [_item(i, "warning") for i in range(1, 4)]
    text = notice_view("en", items, "group", {}).plain_text()
    assert all(f"#{i} " in text for i in range(1, 4))
    assert "more" not in text
