"""The LLM component: what really happened on the endpoint, not the breaker's state.

Reads the fleet snapshot's ``llm`` facts (``piyasa.runtime.llm_watch.LLMOutcomes``: the
age of the last real success, whether the latest real call failed, its error) and the
breaker (``breakers.llm``):

* healthy: the latest real call (a generation, or the fleet's own probe) got an answer;
* warning: the latest call failed, but one succeeded within the window (one bad call);
* critical: the latest call failed and none succeeded within the window (the fleet
  probes by itself when generations are missing, so a quiet fleet still finds out), or
  the breaker is open;
* unknown: no call yet.

Closing the breaker by hand is not a success, so [Reset breaker] on a dead endpoint leaves
the component critical (no false "Resolved"); the next real call decides. A snapshot
without these facts (an older fleet) is read from the breaker alone, as before.
"""

from __future__ import annotations

from typing import Any

from piyasa.admin.health import words
from piyasa.admin.health.fleet_probes import (
    NOT_RUNNING,
    _breaker_health,
    _breaker_state,
    _error_class,
)
from piyasa.admin.health.model import Reading, State, worst
from piyasa.admin.health.probes import ProbeContext, _num
from piyasa.admin.health.words import RAW, Phrase, phrase


def _outcome(llm: dict[str, Any]) -> tuple[State, Phrase]:
    success = llm.get("last_success_age_s")
    window = _num(llm.get("window_s"), 5.0)
    if llm.get("failing"):
        kind = llm.get("last_error_kind") or "error"
        by = "probe" if llm.get("last_failure_by") == "probe" else "generation"
        if success is None:
            return State.CRITICAL, phrase("llm_failing", kind=kind, by=by)
        state = State.CRITICAL if _num(success) > window else State.WARNING
        key, n = words.age("llm_failing", _num(success))
        return state, phrase(key, kind=kind, by=by, n=n)
    if success is None:
        return State.UNKNOWN, phrase("llm_no_call")
    return State.HEALTHY, phrase("llm_answering", by=llm.get("last_success_by") or "generation")


class LLMProbe:
    """The LLM provider (see the module docstring)."""

    name = "llm"

    async def check(self, ctx: ProbeContext) -> Reading:
        snap = ctx.fleet
        if not snap or not snap.get("running"):
            return Reading(self.name, State.UNKNOWN, NOT_RUNNING)
        llm = dict(snap.get("llm") or {})
        desc = (snap.get("breakers") or {}).get("llm")
        if not llm.get("provider") and not desc:
            return Reading(self.name, State.UNKNOWN, "no LLM activity reported")
        breaker = _breaker_state(desc)
        reported = "failing" in llm  # the fleet reports its calls' outcomes
        error_class = _error_class(llm.get("last_error") if reported else None) or _error_class(
            (desc or {}).get("last_error")
        )
        details = {
            "provider": llm.get("provider"),
            "model": llm.get("model"),
            "breaker": breaker,
            "failures": int(_num((desc or {}).get("failures"))),
            "opened_count": int(_num((desc or {}).get("opened_count"))),
            "last_error_class": error_class,
            "generated": snap.get("generated"),
        }
        states = [_breaker_health(breaker)]
        said = [phrase("breaker", state=breaker)]
        if reported:
            outcome, words_said = _outcome(llm)
            states.append(outcome)
            said.append(words_said)
            details.update(
                {
                    k: llm.get(k)
                    for k in (
                        "window_s",
                        "failing",
                        "last_success_age_s",
                        "last_success_by",
                        "last_failure_age_s",
                        "last_failure_by",
                        "last_error_kind",
                        "failures_in_row",
                        "probes",
                        "probe_failures",
                        "last_probe_ok",
                    )
                }
            )
        if llm.get("model"):
            said.insert(0, phrase(RAW, text=str(llm["model"])))
        state = worst(states)
        if error_class and state is not State.HEALTHY:
            said.append(phrase("last_error", error=error_class))
        return Reading.said(self.name, state, said, details)
