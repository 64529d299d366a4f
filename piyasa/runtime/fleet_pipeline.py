"""The fleet's pipeline loops: planner -> generation workers -> outbox, and the gate's
callbacks that close each decision."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from piyasa.runtime.breaker import OPEN
from piyasa.runtime.llm import (
    LLMError,
    build_prompt,
    finish_text,
)
from piyasa.runtime.outbox import Draft, Item
from piyasa.runtime.planner import Decision
from piyasa.runtime.shared_limits import confirm_or_hold, note_human
from piyasa.tasks import wait_for


class FleetPipeline:
    """Part of :class:`piyasa.runtime.fleet.Fleet`; uses the attributes its ``__init__`` sets."""

    # ---- loops

    async def _housekeeping_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                counts = await self.store.counts()
                self.outbox_depth = sum(counts.get(s, 0) for s in ("queued", "claimed", "sending"))
                self.metrics.outbox_depth.set(self.outbox_depth)
            self._error_rate_changed(self.error_rate.check())  # failures ageing out
            await asyncio.sleep(2.0)

    async def _planner_loop(self) -> None:
        assert self.planner is not None
        st = self.settings_store
        from piyasa.sandbox.chatter import detect_topic

        while True:
            gen = self.generator
            llm_ok = gen is not None and not (gen.breaker.state == OPEN and gen.breaker.wait() > 0)
            workers = max(1, int(self.n_workers or st.number("fleet_workers")))
            # Just in time: decide no more than idle workers can start generating now; a
            # decision waiting in a queue would only go stale before its send slot.
            room = workers - self._generating - self._decisions.qsize()
            # ...and keep what is decided but not yet sent to about ``target_latency_s``
            # of recent delivery: when the process (or the database) is the bottleneck,
            # more decisions would not be sent sooner, only wait longer.
            now = self.clock()
            while self._sent_times and self._sent_times[0] < now - 2.0:
                self._sent_times.popleft()
            rate = len(self._sent_times) / 2.0
            cap = max(self.min_outstanding, int(rate * self.target_latency_s))
            room = min(room, cap - self.planner.outstanding)
            decisions = self.planner.plan(
                st.number("max_msgs_per_min"),
                st.number("scale_factor"),
                room,
                paused=bool(st.get("fleet_paused")),
                llm_ok=llm_ok,
                reply_max_age_s=st.number("reply_max_age_s"),
                topic_hint=detect_topic,
                reply_first=bool(st.get("reply_first")),
            )
            per_min = st.number("max_msgs_per_min") * st.number("scale_factor")
            decisions = await confirm_or_hold(self.planner, self.ledger, decisions, per_min)
            for d in decisions:
                self._decisions.put_nowait(d)
            if decisions:
                self.metrics.messages.labels("decided").inc(len(decisions))
            self.planner_passes += 1
            with contextlib.suppress(TimeoutError):
                await wait_for(self._planner_wake.wait(), self.planner_tick_s)
            self._planner_wake.clear()

    def wake_planner(self) -> None:
        """Plan now rather than after ``planner_tick_s`` (the clock moved, a setting changed)."""
        self._planner_wake.set()

    def pipeline_idle(self) -> bool:
        """Nothing decided waits for generation, nothing generated waits for the outbox, and
        the gate has no send in flight. (Sends held back by a limit do not count: they wait
        for time, not for work.) Tests and benchmarks that move the fleet's clock wait for
        this, so a slow machine sees the same timeline as a fast one."""
        return (
            self._decisions.empty()
            and self._generating == 0
            and self._to_enqueue.empty()
            and self._enqueuing == 0
            and (self.gate is None or not self.gate.inflight)
        )

    async def _generation_loop(self) -> None:
        while True:
            decision = await self._decisions.get()
            draft: Draft | None = None
            self._generating += 1
            try:  # a pair disabled since the decision costs no LLM call
                if not self.disabler.why(decision.bot.id, decision.chat.id):
                    draft = await self._generate(decision)
            except LLMError as exc:
                self.metrics.llm_errors.labels(exc.kind).inc()
                self.metrics.messages.labels("generation_failed").inc()
                self._outcome(False)
                self._error(f"llm bot={decision.bot.id}", f"{exc.kind}: {exc}")
                if decision.reply is not None and self.planner is not None:
                    self.planner.add_reply(decision.reply)
                self._spawn(
                    self.store.record_failed_generation(
                        decision.bot.id,
                        decision.chat.id,
                        decision.topic,
                        self.generator.provider.model if self.generator else None,
                        exc.kind,
                        str(exc),
                    )
                )
            finally:
                self._generating -= 1
                self._commit_in_order(decision, draft)

    async def _generate(self, d: Decision) -> Draft:
        assert self.generator is not None
        persona = d.bot.persona
        st = self.settings_store
        hist = list(self.history.get(d.chat.id, ()))
        reply = (d.reply.human_name, d.reply.text) if d.reply else None
        language = persona.get("language") or st.get("default_language") or None
        prompt = build_prompt(persona, d.topic, hist, language, reply, d.bot.display_name)
        prompt.temperature = st.number("llm_temperature")
        gen = await self.generator.generate(prompt)
        m = self.metrics
        m.llm_latency.labels(gen.model).observe(gen.latency_ms / 1000)
        # The planner decides this far ahead of a send slot (just in time): a running mean
        # of generation latency, plus a little for queueing the draft.
        self._lat_mean = 0.9 * self._lat_mean + 0.1 * gen.latency_ms / 1000
        if self.planner is not None:
            self.planner.lead_s = min(3.0, self._lat_mean + 0.03)
        m.llm_tokens.labels("prompt").inc(gen.tokens_in)
        m.llm_tokens.labels("completion").inc(gen.tokens_out)
        m.llm_tokens.labels("cached").inc(gen.tokens_cached)
        m.llm_cost.inc(float(gen.cost_usd))
        self.generated += 1
        return Draft(
            idempotency_key=d.key,
            bot_id=d.bot.id,
            chat_id=d.chat.id,
            tg_chat_id=d.chat.telegram_id,
            is_group=d.chat.is_group,
            text=finish_text(
                gen.text, persona, bool(st.get("footer_enabled")), str(st.get("fleet_footer"))
            ),
            topic=d.topic,
            model=gen.model,
            latency_ms=gen.latency_ms,
            tokens_in=gen.tokens_in,
            tokens_out=gen.tokens_out,
            tokens_cached=gen.tokens_cached,
            cost_usd=gen.cost_usd,
            reply_to_tg_message_id=d.reply.tg_message_id if d.reply else None,
            reply_request_id=d.reply.request_id if d.reply else None,
            decided_at=d.decided_at,
        )

    def _commit_in_order(self, d: Decision, draft: Draft | None) -> None:
        """Queue drafts of a chat in decision order, whatever order generation ended in."""
        nxt, ready = self._ordered.setdefault(d.chat.id, ([d.seq if d.seq == 0 else 0], {}))
        ready[d.seq] = (d, draft)
        while nxt[0] in ready:
            dec, dr = ready.pop(nxt[0])
            nxt[0] += 1
            if dr is None:
                if self.planner is not None:
                    self.planner.settle(dec.chat.id)
                continue
            self.history.setdefault(
                dec.chat.id, deque(maxlen=int(self.settings_store.number("history_size")))
            ).append((f"{dec.bot.name} (bot)", dr.text))
            self._to_enqueue.put_nowait(dr)

    async def _enqueue_loop(self) -> None:
        while True:
            batch = [await self._to_enqueue.get()]
            while not self._to_enqueue.empty() and len(batch) < 500:
                batch.append(self._to_enqueue.get_nowait())
            self._enqueuing += 1
            try:
                await self._enqueue(batch)
            finally:
                self._enqueuing -= 1

    async def _enqueue(self, batch: list[Draft]) -> None:
        delay = 0.2
        while True:
            try:
                items = await self.store.enqueue(batch)
                if self.settler is not None:
                    self.settler.track(items)
                break
            except asyncio.CancelledError:
                for dr in batch:  # keep them for the next writer (restart) or the drain
                    self._to_enqueue.put_nowait(dr)
                raise
            except Exception as exc:
                self._error(
                    "outbox", f"cannot queue {len(batch)} messages: {type(exc).__name__}: {exc}"
                )
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
        if self.gate is not None:
            self.gate.notify()

    async def _drain_enqueue(self) -> None:
        batch = []
        while not self._to_enqueue.empty():
            batch.append(self._to_enqueue.get_nowait())
        if batch:
            await self.store.enqueue(batch)

    # ---- callbacks

    def _on_sent(self, item: Item, tg_id: int) -> None:
        self._sent_times.append(self.clock())
        self.rates.sent(item.bot_id, item.tg_chat_id, item.is_group)
        self._outcome(True)
        now = self.wall().isoformat()
        if self.planner is not None and (self.settler is None or self.settler.done(item)):
            self.planner.settle(item.chat_id)
        self.last_by_bot[item.bot_id] = {"at": now, "chat_id": item.tg_chat_id, "message_id": tg_id}
        self.last_by_chat[item.tg_chat_id] = {"at": now, "bot_id": item.bot_id, "message_id": tg_id}

    def _on_failed(self, item: Item, err: str) -> None:
        if item.refused:  # a send Telegram refused (not one held back unsent: disabled)
            self._outcome(False)
        if self.planner is not None and (self.settler is None or self.settler.done(item)):
            self.planner.settle(item.chat_id)
        self._error(
            f"gate bot={item.bot_id} chat={item.tg_chat_id}",
            f"message {item.message_id} failed: {err}",
        )

    def _on_human(self, chat_id: int, name: str, text: str) -> None:
        if self.planner is not None:
            self.planner.note_human(chat_id)
            self._spawn(note_human(self.ledger, chat_id))
        self.history.setdefault(
            chat_id, deque(maxlen=int(self.settings_store.number("history_size")))
        ).append((name, text))
