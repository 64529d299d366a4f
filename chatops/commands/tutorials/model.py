"""One definition of a tutorial: an id, its catalogue prefix (title, step texts, done
text) and its steps, each with a check of the real state.

A check returns ``None`` when the step is done, else what is missing in the reader's
language — the step is then not ticked. Texts live in the catalogues under
``{prefix}.title``, ``{prefix}.step{i}``, ``{prefix}.done`` (and what checks say under
``{prefix}.missing{i}``), in tr and en.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatops.context import Context

Check = Callable[[Context], Awaitable[str | None]]
MAX_STEPS = 9  # a button's step param is one digit


async def always(ctx: Context) -> str | None:
    """A step that only asks the reader to read or look: nothing to check."""
    return None


@dataclass(frozen=True)
class Tutorial:
    id: str  # lowercase word, carried in buttons and stored in tutorial_progress
    prefix: str  # catalogue prefix of its texts
    checks: tuple[Check, ...]  # one per step, in order
    order: int = 0  # place in the list

    def __post_init__(self) -> None:
        if not 1 <= len(self.checks) <= MAX_STEPS:
            raise ValueError(f"tutorial {self.id}: 1..{MAX_STEPS} steps")

    @property
    def n(self) -> int:
        """How many steps."""
        return len(self.checks)

    def title(self, ctx: Context) -> str:
        return ctx.t(f"{self.prefix}.title")

    def progress(self, ctx: Context, step: int, done: int | None = None) -> str:
        """ "Step 2/5 ●●○○○" / "Adım 2/5 ●●○○○": ``done`` dots filled (default ``step``)."""
        filled = step if done is None else done
        return ctx.t("tutorial.progress", i=step, n=self.n, bar=bar(filled, self.n))


def say(ctx: Context, key: str, /, **params: object) -> str:
    """A tutorial text in the reader's language: ``{p}`` is this surface's command prefix
    (``/`` or ``/piyasa ``), ``{username}`` the reader's account."""
    prefix = "/piyasa " if ctx.surface == "slack" else "/"
    username = ctx.actor.username if ctx.actor is not None else ""
    return ctx.t(key, **{"p": prefix, "username": username, **params})


def bar(done: int, n: int) -> str:
    """``done`` filled dots out of ``n``."""
    return "●" * done + "○" * (n - done)


TUTORIALS: dict[str, Tutorial] = {}


def define(tutorial: Tutorial) -> Tutorial:
    """Add ``tutorial`` to :data:`TUTORIALS` (kept sorted by ``order``)."""
    if tutorial.id in TUTORIALS:
        raise ValueError(f"tutorial {tutorial.id} defined twice")
    items = sorted([*TUTORIALS.values(), tutorial], key=lambda t: t.order)
    TUTORIALS.clear()
    TUTORIALS.update((t.id, t) for t in items)
    return tutorial
