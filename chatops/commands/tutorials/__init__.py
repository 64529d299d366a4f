"""Step-by-step tutorials with progress ("Adım 2/5 ●●○○○"), opened from ``/docs tutorial``.

One definition per tutorial (:class:`~chatops.commands.tutorials.model.Tutorial`: id,
texts, a check of the real state per step) in :mod:`.setup_flows` (add your first bot,
link your Telegram account) and :mod:`.ops_flows` (set up alerts, take and test a
backup); their screens and buttons in :mod:`.actions`.
"""

from __future__ import annotations

from chatops.commands.tutorials.actions import list_view, open_tutorial, step_view
from chatops.commands.tutorials.model import TUTORIALS, Tutorial

__all__ = ["TUTORIALS", "Tutorial", "list_view", "open_tutorial", "step_view"]
