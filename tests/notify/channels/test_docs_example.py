"""docs/notifications.md shows the webhook verification code that the tests run: the file
itself, verbatim, so the documented example can never drift from the tested one."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_docs_show_the_tested_verification_code() -> None:
    doc = (ROOT / "docs" / "notifications.md").read_text(encoding="utf-8")
    code = (ROOT / "piyasa/admin/notify/channels/verify_example.py").read_text(encoding="utf-8")
    assert f"```python\n{code.rstrip()}\n```" in doc


def test_the_docs_name_the_headers_the_channel_sends() -> None:
    doc = (ROOT / "docs" / "notifications.md").read_text(encoding="utf-8")
    webhook = (ROOT / "piyasa/admin/notify/channels/webhook.py").read_text(encoding="utf-8")
    for header in ("X-Piyasa-Timestamp", "X-Piyasa-Signature"):
        assert header in doc and f'"{header}"' in webhook
    assert 'f"{timestamp}.{body}"' in doc
