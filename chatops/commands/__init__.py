"""Chat commands. Each module here declares one capability's commands on ``REGISTRY``;
:func:`load_all` imports them all (new modules are picked up automatically)."""

from __future__ import annotations

import importlib
import pkgutil

from chatops.commands.registry import REGISTRY, Action, Arg, Command, Registry, Spec, command

__all__ = ["REGISTRY", "Action", "Arg", "Command", "Registry", "Spec", "command", "load_all"]


def load_all() -> Registry:
    """Import every command module so its declarations land in ``REGISTRY``."""
    for info in pkgutil.iter_modules(__path__):
        if info.name != "registry":
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY
