"""Benchmarks: one module per benchmark in this package, run as ``piyasa bench NAME``.

A benchmark module defines ``DESCRIPTION`` (one line), ``add_arguments(parser)`` and
``async def run(args) -> dict`` returning the figures (JSON-serialisable) it measured,
including a baseline measured in the same run.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def available() -> dict[str, ModuleType]:
    """Every benchmark module, by name."""
    out: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "run") and hasattr(mod, "add_arguments"):
            out[info.name] = mod
    return out
