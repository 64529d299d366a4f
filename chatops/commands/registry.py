"""The command registry: each command and button action is declared once, here.

A declaration carries everything the pipeline needs — required role, TOTP step-up,
destructive confirmation, audit, arguments (secret ones masked and deleted from chat) —
and help text lives in the catalogs under ``cmd.<name>.help``. Authorization, help, the
Telegram command menu and the role sweep test all read the same declarations, so they
cannot drift apart.

Roles: ``"public"`` (anyone, even unlinked), ``"viewer"`` < ``"operator"`` < ``"admin"``.
A command may also declare a :class:`Bootstrap`: a way in below its role while a condition
holds (``/setup`` while a setup code waits); a button may declare :class:`Param` rules on
the values its server-side params may carry (``users.role`` never to ``admin``). The
pipeline enforces both, /help reads both, the role sweep proves both.

``needs`` names the parts a spec cannot run without; by default ``("db",)``. A spec that
reads only what a process holds (the health snapshot, the registry, the caller's
principal) declares ``needs=()`` and keeps answering during a database outage, on the
last-known-good principals; the pipeline (``chatops.pipeline.check_parts``) refuses the
others with "the database is unavailable". Redis is no such part: the cache falls back to
the process (``piyasa.cache``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from piyasa.admin.identity import ROLE_LEVEL

if TYPE_CHECKING:
    from chatops.context import Context
    from chatops.views import View
    from piyasa.services import Services

Handler = Callable[["Context"], Awaitable["View | None"]]
ConfirmText = Callable[["Context"], Awaitable[str]]
StepUpRule = Callable[["Context"], Awaitable[bool]]
OpenRule = Callable[["Services"], Awaitable[bool]]
ROLES = ("public", "viewer", "operator", "admin")
PARTS = ("db",)
DEFAULT_NEEDS: tuple[str, ...] = ("db",)


def check_needs(spec_id: str, needs: tuple[str, ...]) -> tuple[str, ...]:
    """``needs`` as given; ValueError naming ``spec_id`` for a part that does not exist."""
    unknown = [n for n in needs if n not in PARTS]
    if unknown:
        raise ValueError(f"{spec_id}: unknown needs {unknown} (known: {PARTS})")
    return tuple(needs)


def required_level(role: str) -> int:
    """0 for public; 1..3 for viewer..admin."""
    if role == "public":
        return 0
    return ROLE_LEVEL[role]


@dataclass(frozen=True)
class Arg:
    """A positional argument. ``rest`` takes the remainder of the line; ``secret`` ones are
    masked in the audit log and the message carrying them is deleted from the chat."""

    name: str
    required: bool = False
    rest: bool = False
    secret: bool = False
    choices: tuple[str, ...] = ()
    max_len: int = 0  # characters; 0 = the default cap (chatops.inputs)


@dataclass(frozen=True)
class Param:
    """A rule on one server-side button param: the values it may take. A press carrying
    another value (a stale or forged token, a bug in a view) is refused by the pipeline
    before the handler runs. ``required`` ones must be present."""

    name: str
    choices: tuple[str, ...]
    required: bool = False


@dataclass(frozen=True)
class Bootstrap:
    """A declared way in below a command's role: while ``is_open(services)`` holds, anyone
    not locked may run the command — its handler then does what makes them the role (e.g.
    redeems a one-time setup code) — and /help lists it to them; once it no longer holds,
    the command is its role's alone again. ``name`` says which rule let a request in (the
    audit row's ``via``). A check that fails (database down) counts as closed."""

    name: str
    is_open: OpenRule


@dataclass(eq=False)
class Spec:
    """What the pipeline enforces for one runnable thing (a command or an action)."""

    id: str
    handler: Handler
    role: str
    step_up: bool = False
    confirm: bool = False
    audit: bool = True
    private_only: bool = False
    confirm_text: ConfirmText | None = None
    args: tuple[Arg, ...] = ()
    # step-up for some requests only (e.g. when the target is another admin); the pipeline
    # asks it when ``step_up`` is off
    step_up_if: StepUpRule | None = None
    # a private-only command typed in a group with its secrets: what to do about them now
    # that the group has seen them (e.g. force a password change); may return the answer
    on_exposed: Handler | None = None
    # rules on the values of server-side button params (checked on presses)
    params: tuple[Param, ...] = ()
    # a declared way in below ``role`` while a condition holds (commands only)
    bootstrap: Bootstrap | None = None
    # parts it cannot run without ("db"); () = read-only, answers during an outage
    needs: tuple[str, ...] = DEFAULT_NEEDS

    @property
    def level(self) -> int:
        return required_level(self.role)

    @property
    def command_name(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def secret_args(self) -> set[str]:
        return {a.name for a in self.args if a.secret}

    def parse_args(self, text: str) -> dict[str, str]:
        """Split ``text`` over the declared args; extras are ignored, missing ones absent."""
        out: dict[str, str] = {}
        rest = (text or "").strip()
        for arg in self.args:
            if not rest:
                break
            if arg.rest:
                out[arg.name], rest = rest, ""
            else:
                head, _, rest = rest.partition(" ")
                out[arg.name], rest = head, rest.strip()
        return out

    def missing_args(self, parsed: dict[str, str]) -> list[str]:
        return [a.name for a in self.args if a.required and not parsed.get(a.name)]

    def bad_choices(self, parsed: dict[str, str]) -> list[str]:
        return [
            a.name
            for a in self.args
            if a.choices and a.name in parsed and parsed[a.name].lower() not in a.choices
        ]

    def bad_params(self, params: dict[str, Any]) -> list[str]:
        """Names of declared params that are missing (when required) or outside their
        choices; undeclared params are the handler's business."""
        bad = []
        for p in self.params:
            value = params.get(p.name)
            if value is None:
                if p.required:
                    bad.append(p.name)
            elif not isinstance(value, str) or value not in p.choices:
                bad.append(p.name)
        return bad


@dataclass(eq=False)
class Action(Spec):
    """A button action ``<command>.<name>``; its role defaults to its command's."""

    command: Command | None = None


@dataclass(eq=False)
class Command(Spec):
    """A typed command (``/name`` on Telegram, ``/piyasa name`` on Slack)."""

    capability: str = "core"
    hidden: bool = False
    order: int = 100
    actions: dict[str, Action] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.id

    @property
    def help_key(self) -> str:
        return f"cmd.{self.id}.help"

    def usage(self) -> str:
        parts = [self.id]
        for a in self.args:
            label = "|".join(a.choices) if a.choices else a.name.upper()
            parts.append(f"<{label}>" if a.required else f"[{label}]")
        return " ".join(parts)

    def action(
        self,
        name: str,
        *,
        role: str | None = None,
        step_up: bool = False,
        confirm: bool = False,
        audit: bool = True,
        private_only: bool = False,
        confirm_text: ConfirmText | None = None,
        step_up_if: StepUpRule | None = None,
        params: tuple[Param, ...] = (),
        needs: tuple[str, ...] = DEFAULT_NEEDS,
    ) -> Callable[[Handler], Handler]:
        """Declare a button action of this command (``role`` defaults to the command's;
        a command's :class:`Bootstrap` never opens its actions)."""

        def deco(fn: Handler) -> Handler:
            aid = f"{self.id}.{name}"
            if name in self.actions:
                raise ValueError(f"action {aid} declared twice")
            act_role = role or self.role
            if required_level(act_role) < self.level:
                raise ValueError(f"action {aid} may not be more open than /{self.id}")
            self.actions[name] = Action(
                id=aid,
                handler=fn,
                role=act_role,
                step_up=step_up,
                confirm=confirm,
                audit=audit,
                private_only=private_only,
                confirm_text=confirm_text,
                step_up_if=step_up_if,
                params=tuple(params),
                needs=check_needs(aid, needs),
                command=self,
            )
            if self.registry is not None:
                self.registry._index(self.actions[name])
            return fn

        return deco

    registry: Registry | None = None


class Registry:
    """All commands of one bot; ``REGISTRY`` is the product's, tests may build their own."""

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        self._specs: dict[str, Spec] = {}

    def _index(self, spec: Spec) -> None:
        if spec.id in self._specs:
            raise ValueError(f"{spec.id} declared twice")
        self._specs[spec.id] = spec

    def command(
        self,
        name: str,
        *,
        role: str,
        args: tuple[Arg, ...] | list[Arg] = (),
        step_up: bool = False,
        confirm: bool = False,
        audit: bool = True,
        private_only: bool = False,
        hidden: bool = False,
        capability: str | None = None,
        order: int = 100,
        confirm_text: ConfirmText | None = None,
        step_up_if: StepUpRule | None = None,
        on_exposed: Handler | None = None,
        bootstrap: Bootstrap | None = None,
        needs: tuple[str, ...] = DEFAULT_NEEDS,
    ) -> Callable[[Handler], Command]:
        """Declare a command; the decorated function becomes ``Command.handler`` and the
        name is bound to the Command (so ``@mycmd.action("page")`` declares its buttons)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if bootstrap is not None and role == "public":
            raise ValueError(f"/{name} is public: a bootstrap rule would open nothing")
        if not name.isidentifier() or name.lower() != name or len(name) > 32:
            raise ValueError(f"command name {name!r} must be lowercase a-z0-9_ (Telegram)")

        def deco(fn: Handler) -> Command:
            cmd = Command(
                id=name,
                handler=fn,
                role=role,
                step_up=step_up,
                confirm=confirm,
                audit=audit,
                private_only=private_only,
                confirm_text=confirm_text,
                args=tuple(args),
                step_up_if=step_up_if,
                on_exposed=on_exposed,
                bootstrap=bootstrap,
                needs=check_needs(name, needs),
                capability=capability or _capability_of(fn),
                hidden=hidden,
                order=order,
            )
            cmd.registry = self
            self._index(cmd)
            self.commands[name] = cmd
            return cmd

        return deco

    def get(self, spec_id: str) -> Spec | None:
        return self._specs.get(spec_id)

    def specs(self) -> Iterator[Spec]:
        """Every command and action."""
        return iter(list(self._specs.values()))

    def capabilities(self) -> dict[str, list[Command]]:
        out: dict[str, list[Command]] = {}
        for cmd in self.commands.values():
            out.setdefault(cmd.capability, []).append(cmd)
        return out

    def visible(self, level: int, opened: frozenset[str] = frozenset()) -> list[Command]:
        """Commands a caller at ``level`` may run, in help order; ``opened`` names the
        commands whose :class:`Bootstrap` is open to this caller right now."""
        cmds = [
            c
            for c in self.commands.values()
            if not c.hidden and (c.level <= level or c.id in opened)
        ]
        return sorted(cmds, key=lambda c: (c.order, c.id))

    def bootstraps(self) -> list[Command]:
        """Commands that declare a :class:`Bootstrap`."""
        return [c for c in self.commands.values() if c.bootstrap is not None]


def _capability_of(fn: Any) -> str:
    module = getattr(fn, "__module__", "") or ""
    return module.rsplit(".", 1)[-1] if module.startswith("chatops.commands.") else "core"


REGISTRY = Registry()
command = REGISTRY.command
