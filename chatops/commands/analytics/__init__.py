"""Bot analytics from chat: ``/analytics [24h|7d|30d|YYYY-MM-DD..YYYY-MM-DD]`` (viewer).

Figures come from :mod:`piyasa.analytics.queries` (rollups only); charts from
:mod:`piyasa.analytics.charts`; numbers, money and dates are localised by Babel
(:mod:`piyasa.analytics.localfmt`). Modules: ``common`` (period, errors, formatting),
``overview`` (the command, totals, top performers, issues), ``tables`` (bots table, per
chat, per model), ``detail`` (bot detail, compare) and ``exports`` (charts, CSV).
Importing the package declares them all. Every screen is read-only, so every button is
the command's own role (viewer).
"""

from __future__ import annotations

from chatops.commands.analytics import detail, exports, overview, tables

__all__ = ["detail", "exports", "overview", "tables"]
