from __future__ import annotations

from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401
