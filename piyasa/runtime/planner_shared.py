"""Several instances: a planner's decisions confirmed by the fleet-wide ledger.

    planner.shared = True                       # record what a refusal must undo
    kept = await confirm(planner, ledger, decisions, per_min * scale)

The planner decides on its own memory (fast); :func:`confirm` asks the ledger
(:mod:`piyasa.cluster.ledger`) about the whole tick in one atomic step and hands the
refused decisions back to the planner (:func:`retract`), which learns the shared state
(budget tokens left, a full hourly count, another instance's last speaker) so the next
ticks do not ask again at once.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from piyasa.cluster.ledger import BOT_HOURLY, BUDGET, CHAT_HOURLY, Claim, Verdict
from piyasa.runtime.planner import Decision, Planner


def claims(planner: Planner, decisions: list[Decision]) -> list[Claim]:
    """What each decision takes fleet-wide; a reply may borrow the planner's reply debt."""
    debt = planner.reply_debt if planner._reply_first else 0.0
    return [
        Claim(
            d.bot.id,
            d.chat.id,
            d.bot.hourly_limit,
            d.chat.msg_budget,
            debt if d.reply is not None else 0.0,
        )
        for d in decisions
    ]


async def confirm(
    planner: Planner, ledger: Any, decisions: list[Decision], per_min: float
) -> list[Decision]:
    """The decisions the ledger admits, in order; the others are retracted.
    ``per_min``: the fleet budget (max_msgs_per_min × scale_factor) per minute."""
    if not decisions:
        return []
    try:
        verdicts = await ledger.claim_many(claims(planner, decisions), per_min)
    except Exception:
        for d in decisions:
            retract(planner, d, Verdict("unreachable", 0.0, None))
        renumber(planner, decisions, [])
        raise
    kept = []
    for d, v in zip(decisions, verdicts, strict=True):
        if v.ok:
            planner._undo.pop(d.key, None)
            kept.append(d)
        else:
            retract(planner, d, v)
    renumber(planner, decisions, kept)
    return kept


def renumber(planner: Planner, decisions: list[Decision], kept: list[Decision]) -> None:
    """Close the gaps refusals left in each chat's decision sequence: the fleet commits a
    chat's drafts strictly in ``seq`` order, so a missing number would hold the chat's
    later messages forever. A tick's decisions of a chat are the newest numbers there."""
    first: dict[int, int] = {}
    for d in decisions:
        first[d.chat.id] = min(d.seq, first.get(d.chat.id, d.seq))
    nxt = dict(first)
    for d in kept:
        d.seq = nxt[d.chat.id]
        nxt[d.chat.id] += 1
    for chat_id, seq in nxt.items():
        planner._seq[chat_id] = seq


def retract(planner: Planner, d: Decision, verdict: Verdict) -> None:
    """Undo what the planner noted for ``d`` and learn why the ledger refused it."""
    p = planner
    now = p.clock()
    chat_id, bot_id = d.chat.id, d.bot.id
    prev_last, prev_spoke = p._undo.pop(d.key, (None, None))
    p._budget += 1
    for dq in (p.hourly.get(bot_id), p.chat_hourly.get(chat_id), p.due.get(chat_id)):
        if dq:
            dq.pop()
    p.pending[chat_id] = max(0, p.pending.get(chat_id, 0) - 1)
    if prev_spoke is None:
        p.last_spoke.pop((chat_id, bot_id), None)
    else:
        p.last_spoke[(chat_id, bot_id)] = prev_spoke
    if verdict.last is not None:  # the shared truth (another instance's bot, or a person)
        p.last_speaker[chat_id] = verdict.last
    elif prev_last is None:
        p.last_speaker.pop(chat_id, None)
    else:
        p.last_speaker[chat_id] = prev_last
    if verdict.reason == BUDGET:
        p._budget = min(p._budget, verdict.tokens)
    held_until = now - 3600 + p.recheck_s  # counts as full until the recheck
    if verdict.reason == BOT_HOURLY:
        p.hourly[bot_id] = deque([held_until] * max(1, d.bot.hourly_limit))
    if verdict.reason == CHAT_HOURLY and d.chat.msg_budget is not None:
        p.chat_hourly[chat_id] = deque([held_until] * max(1, d.chat.msg_budget))
    if d.reply is not None:
        p.add_reply(d.reply)
