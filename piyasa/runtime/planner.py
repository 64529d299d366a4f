"""The planner: who speaks next, where, about what, and in reply to whom.

Rules, in the order they are applied each tick:

1. Nothing while the fleet is paused or the LLM provider's breaker is open (no point
   deciding what cannot be generated).
2. A fleet-wide budget: ``max_msgs_per_min`` × ``scale_factor`` (both re-read from the
   settings table within seconds) as a token bucket; replies spend it too, but may borrow
   a few messages from it so a person is not kept waiting by the chatter's pace.
3. Replies first: a human message that mentions or replies to a fleet bot is answered
   (by that bot) before any new chatter; while the answering bot only waits for its send
   slot, its chat gets no new chatter.
   With ``reply_first`` off (a fleet setting), replies wait for the budget like chatter.
4. For each chat: enabled chat under its own hourly budget (``msg_budget``, when set); an
   enabled bot that belongs to it (and that the fleet has
   not disabled there: kicked, chat gone, token revoked, bad schedule), is inside its active
   hours *in its own timezone*, is under its hourly limit, and is not the last speaker in
   that chat (no bot twice in a row); the least recently heard bot goes first.
5. Just in time: a (bot, chat) is decided only when its send slot (the same limits the
   gate enforces, projected on decisions) opens within ``lead_s``, the expected generation
   latency, so a generated message waits for the gate only briefly and no paid generation
   goes stale in a queue. A chat whose oldest undelivered decision is more than
   ``max_lag_s`` past its projected slot gets no new chatter until delivery catches up
   (a slow event loop, a 429, a Telegram outage), and a chat with ``max_pending_per_chat``
   undelivered messages gets no more at all: the outbox stays bounded.
6. Topic: the chat's topics that the persona covers, least recently used in that chat.

Several instances (``shared``): rules 2 and 4's budget, hourly counts and last speaker are
fleet-wide. The planner still decides on its own memory, then the fleet confirms the
tick's decisions against the shared ledger (:mod:`piyasa.cluster.ledger`, one atomic step)
and hands back the refused ones (:mod:`piyasa.runtime.planner_shared`).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from piyasa.runtime.buckets import DeliveryLimits, MemoryLimiter, SendKey
from piyasa.runtime.roster import BotInfo, ChatInfo, Roster, is_active
from piyasa.runtime.schedule import ScheduleError

DEFAULT_TOPICS = ("bist", "fx", "crypto", "macro")
HUMAN = -1


@dataclass
class PendingReply:
    request_id: int
    chat_id: int
    target_bot_id: int | None
    tg_message_id: int
    human_name: str
    text: str
    created: float | None = None  # planner clock; stamped by add_reply


@dataclass
class Decision:
    key: str
    bot: BotInfo
    chat: ChatInfo
    topic: str
    seq: int
    reply: PendingReply | None = None
    decided_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Planner:
    def __init__(
        self,
        roster: Roster,
        limits: DeliveryLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_pending_per_chat: int | None = None,
        max_lag_s: float | None = None,
        lead_s: float = 0.0,
        rng: random.Random | None = None,
        on_bad_bot: Callable[[int, str], None] = lambda _b, _why: None,
    ) -> None:
        """``on_bad_bot(bot_id, why)``: a bot whose schedule cannot be read was skipped (and
        set disabled here); the fleet records it. Only that bot stops, never the planner."""
        self.roster = roster
        self.clock = clock
        self.wall = wall
        self.pacer = MemoryLimiter(limits or DeliveryLimits(), clock=clock)
        self.max_pending_per_chat = max_pending_per_chat
        self.rng = rng or random.Random()
        self.on_bad_bot = on_bad_bot
        self.last_speaker: dict[int, int] = {}  # chat id -> bot id, or HUMAN
        self.last_spoke: dict[tuple[int, int], float] = {}  # (chat, bot) -> when
        self.hourly: dict[int, deque[float]] = {}
        self.chat_hourly: dict[int, deque[float]] = {}  # chat id -> decision times
        self.topic_used: dict[tuple[int, str], float] = {}
        self.pending: dict[int, int] = {}  # chat id -> decided, not yet sent/failed
        # chat id -> projected send times of its undelivered decisions, oldest first (the
        # gate delivers a chat in decision order, so settle() pops the head)
        self.due: dict[int, deque[float]] = {}
        self.lead_s = lead_s  # expected generation latency; the fleet keeps it current
        self.max_lag_s = max_lag_s  # None: decide regardless of delivery progress
        self.replies: list[PendingReply] = []
        self._seq: dict[int, int] = {}
        self._budget = 0.0
        self._budget_fresh = True
        self._budget_at = clock()
        self.chat_decided: dict[int, float] = {}  # chat id -> last decision
        self._slot = 0.0
        self.reply_debt = 5.0
        self.shared = False  # decisions are confirmed by a fleet-wide ledger
        self._reply_first = True
        self._undo: dict[str, tuple[int | None, float | None]] = {}  # key -> last speaker
        self.recheck_s = 30.0  # a shared hourly refusal: look again this much later

    # ---- facts fed by the fleet

    def note_human(self, chat_id: int) -> None:
        self.last_speaker[chat_id] = HUMAN

    def note_bot(self, chat_id: int, bot_id: int, when: float | None = None) -> None:
        self.last_speaker[chat_id] = bot_id
        self.last_spoke[(chat_id, bot_id)] = self.clock() if when is None else when

    def note_hourly(self, bot_id: int, count: int) -> None:
        """Seed the hourly window with decisions made before a restart."""
        now = self.clock()
        self.hourly[bot_id] = deque([now] * count)

    def note_chat_hourly(self, chat_id: int, count: int) -> None:
        """Seed a chat's hourly window with decisions made before a restart."""
        self.chat_hourly[chat_id] = deque([self.clock()] * count)

    def add_reply(self, reply: PendingReply) -> None:
        if reply.created is None:
            reply.created = self.clock()
        if all(r.request_id != reply.request_id for r in self.replies):
            self.replies.append(reply)

    @property
    def outstanding(self) -> int:
        """Decided, not yet delivered or failed, in every chat."""
        return sum(self.pending.values())

    def settle(self, chat_id: int) -> None:
        """A decided message of this chat was delivered or failed for good."""
        self.pending[chat_id] = max(0, self.pending.get(chat_id, 0) - 1)
        dq = self.due.get(chat_id)
        if dq:
            dq.popleft()

    def seed_pending(self, chat_id: int, count: int) -> None:
        """Undelivered decisions found at start: due now, so the chat waits for them."""
        self.pending[chat_id] = count
        self.due[chat_id] = deque([self.clock()] * count)

    def lagging(self, chat_id: int, now: float) -> bool:
        """Is delivery in this chat behind the schedule its decisions were made for?"""
        if self.max_lag_s is None:
            return False
        dq = self.due.get(chat_id)
        return bool(dq) and now - dq[0] > self.max_lag_s

    # ---- rules

    def _hourly_ok(self, bot: BotInfo, now: float) -> bool:
        if bot.hourly_limit <= 0:
            return False
        dq = self.hourly.setdefault(bot.id, deque())
        while dq and dq[0] <= now - 3600:
            dq.popleft()
        return len(dq) < bot.hourly_limit

    def _chat_budget_ok(self, chat: ChatInfo, now: float) -> bool:
        """Under the chat's own hourly budget (``msg_budget``; None: no cap of its own)."""
        if chat.msg_budget is None:
            return True
        dq = self.chat_hourly.setdefault(chat.id, deque())
        while dq and dq[0] <= now - 3600:
            dq.popleft()
        return len(dq) < chat.msg_budget

    def eligible(self, bot: BotInfo, chat: ChatInfo, now: float, now_utc: datetime) -> bool:
        return (
            bot.enabled
            and chat.enabled
            and self._chat_budget_ok(chat, now)
            and self.roster.pair_ok(bot.id, chat.id)
            and self.last_speaker.get(chat.id) != bot.id
            and self._active(bot, now_utc)
            and self._hourly_ok(bot, now)
        )

    def _active(self, bot: BotInfo, now_utc: datetime) -> bool:
        try:
            return is_active(bot.active_hours, bot.timezone, now_utc)
        except ScheduleError as exc:  # the roster validates; this is the last line of defence
            bot.enabled = False
            self.on_bad_bot(bot.id, str(exc))
            return False

    def _topic(self, bot: BotInfo, chat: ChatInfo, hint: str | None = None) -> str:
        chat_topics = [t for t in chat.topics if t]
        persona_topics = [t for t in bot.persona.get("topics") or [] if t]
        if hint and (not chat_topics or hint in chat_topics):
            choices = [hint]
        else:
            both = [t for t in chat_topics if t in persona_topics]
            choices = both or chat_topics or persona_topics or list(DEFAULT_TOPICS)
        topic = min(
            choices, key=lambda t: (self.topic_used.get((chat.id, t), -1.0), self.rng.random())
        )
        self.topic_used[(chat.id, topic)] = self.clock()
        return topic

    def _refill_budget(self, per_min: float, now: float) -> None:
        rate = max(0.0, per_min) / 60.0
        burst = max(1.0, rate * 5.0) if rate > 0 else 0.0
        if self._budget_fresh:  # first tick: start with a full bucket
            self._budget_fresh = False
            self._budget = burst
        self._budget = min(burst, self._budget + (now - self._budget_at) * rate)
        self._budget_at = now

    def _pace(self, bot: BotInfo, chat: ChatInfo, now: float) -> bool:
        """Take the pair's next send slot if it opens within ``lead_s`` (projected there)."""
        key = SendKey(bot.id, chat.telegram_id, chat.is_group)
        at = now + self.lead_s
        if self.pacer.wait_one(key, at) > 0:
            return False
        self.pacer.consume(key, at)
        self._slot = at
        return True

    def _make(
        self,
        bot: BotInfo,
        chat: ChatInfo,
        topic: str,
        now: float,
        reply: PendingReply | None = None,
    ) -> Decision:
        self._budget -= 1
        key = uuid.uuid4().hex
        if self.shared:
            self._undo[key] = (
                self.last_speaker.get(chat.id),
                self.last_spoke.get((chat.id, bot.id)),
            )
        self.note_bot(chat.id, bot.id, now)
        self.hourly.setdefault(bot.id, deque()).append(now)
        self.chat_hourly.setdefault(chat.id, deque()).append(now)
        self.pending[chat.id] = self.pending.get(chat.id, 0) + 1
        self.chat_decided[chat.id] = now
        self.due.setdefault(chat.id, deque()).append(self._slot)
        seq = self._seq.get(chat.id, 0)
        self._seq[chat.id] = seq + 1
        return Decision(
            key=key,
            bot=bot,
            chat=chat,
            topic=topic,
            seq=seq,
            reply=reply,
            decided_at=self.wall(),
        )

    def _cap(self, chat: ChatInfo) -> int:
        if self.max_pending_per_chat is not None:
            return self.max_pending_per_chat
        return max(6, 3 * len(self.roster.members.get(chat.id, [])))

    def plan(
        self,
        per_min: float,
        scale: float,
        room: int,
        *,
        paused: bool = False,
        llm_ok: bool = True,
        reply_max_age_s: float = 3600.0,
        topic_hint: Callable[[str], str | None] | None = None,
        reply_first: bool = True,
    ) -> list[Decision]:
        """Decide up to ``room`` messages now; ``reply_first`` lets replies borrow from the
        budget and hold their chat's chatter (rule 3)."""
        now = self.clock()
        self._reply_first = reply_first
        self._refill_budget(per_min * scale, now)
        if paused or not llm_ok or room <= 0:
            return []
        now_utc = self.wall()
        out: list[Decision] = []
        # 1. replies first; a chat whose reply only waits for its bot's send slot gets no
        # new chatter meanwhile, so nothing jumps ahead of the answer.
        held: set[int] = set()
        self.replies = [r for r in self.replies if now - (r.created or now) <= reply_max_age_s]
        for reply in list(self.replies):
            # A person waiting for an answer does not wait for the chatter budget: a reply
            # may borrow up to ``reply_debt`` messages from it (chatter then pauses longer).
            debt = self.reply_debt if reply_first else 0.0
            if len(out) >= room or self._budget < 1 - debt:
                return out
            chat = self.roster.chats.get(reply.chat_id)
            if chat is None or not chat.enabled:
                self.replies.remove(reply)
                continue
            if reply.target_bot_id is not None:
                cands = (
                    [self.roster.bots[reply.target_bot_id]]
                    if reply.target_bot_id in self.roster.bots
                    else []
                )
            else:
                cands = self.roster.bots_in(chat.id)
            ready = [b for b in cands if self.eligible(b, chat, now, now_utc)]
            for bot in ready:
                if self._pace(bot, chat, now):
                    hint = topic_hint(reply.text) if topic_hint else None
                    out.append(self._make(bot, chat, self._topic(bot, chat, hint), now, reply))
                    self.replies.remove(reply)
                    break
            else:
                if ready and reply_first:
                    held.add(chat.id)
        # 2. chatter: the chat that waited longest for a decision first (a rotation per tick
        # could lock onto one chat when the budget refills in step with the tick)
        chats = [c for c in self.roster.chats.values() if c.enabled]
        if not chats:
            return out
        chats.sort(key=lambda c: (self.chat_decided.get(c.id, -1e18), c.id))
        progress = True
        while progress and len(out) < room and self._budget >= 1:
            progress = False
            for chat in chats:
                if len(out) >= room or self._budget < 1:
                    break
                if (
                    chat.id in held
                    or self.pending.get(chat.id, 0) >= self._cap(chat)
                    or self.lagging(chat.id, now)
                ):
                    continue
                bots = [
                    b for b in self.roster.bots_in(chat.id) if self.eligible(b, chat, now, now_utc)
                ]
                bots.sort(
                    key=lambda b: (self.last_spoke.get((chat.id, b.id), -1e18), self.rng.random())
                )
                for bot in bots:
                    if self._pace(bot, chat, now):
                        out.append(self._make(bot, chat, self._topic(bot, chat), now))
                        progress = True
                        break
        return out
