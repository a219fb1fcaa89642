"""ProjectAgentSlots: at most N agent runs of one GitLab project at a time, across all workers.

One long-lived workflow per project (`agent-slots:<task queue>:<project_id>`) hands out slots:
reviews before answers (a review of the current head is never starved by discussion spam), each
kind in arrival order. It also bounds spend where the slot is taken, durably in its own state: at
most MAX_QUEUED_AGENT_RUNS_PER_PROJECT runs wait (a review arriving at a full queue takes the place
of the newest waiting answer), at most AGENT_RUNS_PER_PROJECT_PER_DAY slots are granted per UTC
day, none once the runs of the day have used AGENT_TOKENS_PER_PROJECT_PER_DAY model tokens (each
holder reports its run's tokens when it releases the slot), and one author's fork MRs get at most
FORK_REVIEWS_PER_AUTHOR_PER_DAY review requests admitted per UTC day. A refused requester gets `slot_refused(reason, key)`, and its workflow tells the MR why.
A flow asks for a slot with `agent_slot(...)` (signal-with-start through an activity, since workflow
code cannot start other workflows that way), waits for the `slot_granted` signal, runs its agent,
and releases the slot in a `finally`. A holder that disappears without releasing (terminated,
timed out) is noticed by a periodic liveness check and its slot is taken back. The queue is visible
in the Web UI through the `state` query, and each waiting flow's `progress` says it is queued.

Why not only worker slots: those bound one worker; a burst of 200 MRs in one project would still
take every agent slot of the cluster. The global bound is the agent task queue's worker slots and
its server-side rate limit (see worker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from contracts.slots import SlotsState, slots_id


class SlotRefused(ApplicationError):
    """The project's slots refused this run (queue full, daily cap): no agent run."""

    def __init__(self, reason: str, key: str) -> None:
        super().__init__(reason, key, type="AgentSlotRefused", non_retryable=True)
        self.reason, self.key = reason, key


def _is_review(requester: str) -> bool:
    return requester.startswith("review:")


with workflow.unsafe.imports_passed_through():
    from activities.slots import SlotActivities
    from workflows.inputs import start_input

__all__ = ["AgentSlotHolder", "ProjectAgentSlots", "SlotsState", "slots_id"]

GRANT_TOGETHER = "slots-grant-together-v1"  # workflow.patched: free slots granted in one go
LIVENESS_EVERY = timedelta(minutes=2)
CONTINUE_AFTER_EVENTS = 500
IDLE_EXIT = timedelta(minutes=30)


@workflow.defn(name="ProjectAgentSlots")
class ProjectAgentSlots:
    def __init__(self) -> None:
        self._limit = 1
        self._holders: list[str] = []
        self._waiting: deque[str] = deque()
        self._events = 0
        self._daily_cap = 0
        self._max_waiting = 0
        self._day = ""
        self._granted_today = 0
        self._token_cap = 0
        self._tokens_today = 0
        self._fork_cap = 0
        self._fork_reviews_today: dict[str, int] = {}
        self._refusals: list[tuple[str, str, str]] = []  # (requester, reason, key), sent by run()

    @workflow.signal
    def acquire(
        self,
        requester: str,
        daily_cap: int = -1,
        max_waiting: int = -1,
        token_cap: int = -1,
        fork_cap: int = -1,
        fork_author: str = "",
    ) -> None:
        self._events += 1
        if daily_cap >= 0:
            self._daily_cap = daily_cap
        if max_waiting >= 0:
            self._max_waiting = max_waiting
        if token_cap >= 0:
            self._token_cap = token_cap
        if fork_cap >= 0:
            self._fork_cap = fork_cap
        if requester in self._holders or requester in self._waiting:
            return
        if fork_author:
            self._roll_day()
            admitted = self._fork_reviews_today.get(fork_author, 0)
            if self._fork_cap and admitted >= self._fork_cap:
                reason = (
                    f"{fork_author} already had {admitted} reviews of merge requests from forks in "
                    f"this project today (FORK_REVIEWS_PER_AUTHOR_PER_DAY={self._fork_cap}); "
                    "it resets at midnight UTC"
                )
                self._refusals.append((requester, reason, f"fork-cap-{self._day}"))
                return
        if self._max_waiting and len(self._waiting) >= self._max_waiting:
            answers = [w for w in self._waiting if not _is_review(w)]
            if _is_review(requester) and answers:
                self._waiting.remove(answers[-1])  # the newest waiting answer makes room
                self._refuse(answers[-1])
            else:
                self._refuse(requester)
                return
        self._waiting.append(requester)
        if fork_author:  # counted once admitted to the queue, whether or not it runs in the end
            self._fork_reviews_today[fork_author] = self._fork_reviews_today.get(fork_author, 0) + 1

    def _refuse(self, requester: str) -> None:
        reason = (
            f"this project already has {len(self._waiting)} agent runs waiting "
            f"(MAX_QUEUED_AGENT_RUNS_PER_PROJECT={self._max_waiting}); please ask again later"
        )
        self._refusals.append((requester, reason, "queue-full"))

    @workflow.signal
    def release(self, requester: str, tokens: int = 0, unused: bool = False) -> None:
        """`unused`: the holder asked early (while it prepared) and ran no agent in the slot (the
        review fanned out into bundles, or was superseded): the grant does not count for the day."""
        self._events += 1
        if tokens > 0:  # the model tokens the holder's run used, for the daily token budget
            self._roll_day()
            self._tokens_today += tokens
        if requester in self._holders:
            self._holders.remove(requester)
            if unused and self._granted_today > 0:
                self._granted_today -= 1
        elif requester in self._waiting:
            self._waiting.remove(requester)

    @workflow.signal
    def set_limit(self, limit: int) -> None:
        self._limit = max(1, limit)

    @workflow.query
    def state(self) -> SlotsState:
        return SlotsState(
            self._limit, list(self._holders), list(self._waiting), self._daily_cap, self._max_waiting,
            self._day, self._granted_today, self._token_cap, self._tokens_today, self._fork_cap,
            dict(self._fork_reviews_today),
        )  # fmt: skip

    def _next(self) -> str:
        """Reviews first, then answers; each in arrival order."""
        requester = next((w for w in self._waiting if _is_review(w)), self._waiting[0])
        self._waiting.remove(requester)
        return requester

    def _roll_day(self) -> None:
        today = workflow.now().strftime("%Y-%m-%d")
        if today != self._day:
            self._day, self._granted_today, self._tokens_today = today, 0, 0
            self._fork_reviews_today = {}

    def _over_cap(self, pending: int = 0) -> str:
        """Why no slot may be granted today ("" when one may), as the MR note says it. `pending`:
        grants decided but not yet counted."""
        self._roll_day()
        if self._daily_cap and self._granted_today + pending >= self._daily_cap:
            return (
                f"this project reached its {self._daily_cap} agent runs for today "
                "(AGENT_RUNS_PER_PROJECT_PER_DAY); it resets at midnight UTC"
            )
        if self._token_cap and self._tokens_today >= self._token_cap:
            return (
                f"this project's agent runs used {self._tokens_today} of its {self._token_cap} model "
                "tokens for today (AGENT_TOKENS_PER_PROJECT_PER_DAY); it resets at midnight UTC"
            )
        return ""

    async def _send_refusals(self) -> None:
        refusals, self._refusals = self._refusals, []
        for requester, reason, key in refusals:
            try:
                await workflow.get_external_workflow_handle(requester).signal(
                    "slot_refused", args=[reason, key]
                )
            except Exception:  # the requester is gone already
                workflow.logger.info("slot requester %s is gone", requester)

    @workflow.run
    async def run(self, *inputs: Any) -> None:
        state = start_input(SlotsState, inputs)
        self._limit = max(1, state.limit)
        # Signals can be handled before run() starts (signal-with-start delivers them in the first
        # activation), so carried-over state is merged in front of what they queued, not assigned.
        self._holders = [h for h in state.holders if h not in self._holders] + self._holders
        self._waiting = deque([w for w in state.waiting if w not in self._waiting] + list(self._waiting))
        limits = workflow.patched("slots-limits-v1")
        if limits:
            self._daily_cap = self._daily_cap or state.daily_cap
            self._max_waiting = self._max_waiting or state.max_waiting
            self._token_cap = self._token_cap or state.token_cap
            self._fork_cap = self._fork_cap or state.fork_cap
            if state.day and self._day in ("", state.day):
                # Signals handled before run() started count on top of the carried-over day.
                self._day = state.day
                self._granted_today += state.granted_today
                self._tokens_today += state.tokens_today
                for author, count in state.fork_reviews_today.items():
                    self._fork_reviews_today[author] = self._fork_reviews_today.get(author, 0) + count
        idle_since = workflow.now()
        while True:
            if limits and self._waiting and (cap := self._over_cap()):
                self._refusals += [(w, cap, f"daily-cap-{self._day}") for w in self._waiting]
                self._waiting.clear()
            if limits and self._refusals:
                await self._send_refusals()
            if workflow.patched(GRANT_TOGETHER):
                await self._grant_free_slots(limits)
            else:
                while self._waiting and len(self._holders) < self._limit:
                    if limits and self._over_cap():
                        break
                    requester = self._next() if limits else self._waiting.popleft()
                    try:
                        await workflow.get_external_workflow_handle(requester).signal("slot_granted")
                    except Exception:  # the requester is gone (finished, terminated): skip it
                        workflow.logger.info("slot requester %s is gone", requester)
                        continue
                    self._holders.append(requester)
                    self._granted_today += 1
            if self._holders or self._waiting:
                idle_since = workflow.now()
            elif workflow.now() - idle_since >= IDLE_EXIT:
                return  # the next acquire starts a fresh one
            if self._events >= CONTINUE_AFTER_EVENTS:
                workflow.continue_as_new(self.state())
            try:
                await workflow.wait_condition(
                    lambda: (
                        bool(self._refusals) or (bool(self._waiting) and len(self._holders) < self._limit)
                    ),
                    timeout=LIVENESS_EVERY,
                )
            except TimeoutError:
                await self._reclaim()

    async def _grant_free_slots(self, limits: bool) -> None:
        """Grant every free slot at once: the grants go out together, not one server round trip
        after the other (4 free slots took 4 workflow tasks in turn; bench/bench_review_overhead.py).
        A requester that is gone gives its slot back and the next waiting one gets it."""
        while self._waiting and len(self._holders) < self._limit:
            granted: list[str] = []
            while self._waiting and len(self._holders) + len(granted) < self._limit:
                if limits and self._over_cap(len(granted)):
                    break
                granted.append(self._next() if limits else self._waiting.popleft())
            if not granted:
                return
            self._holders += granted
            self._granted_today += len(granted)
            sent = await asyncio.gather(
                *(workflow.get_external_workflow_handle(r).signal("slot_granted") for r in granted),
                return_exceptions=True,
            )
            for requester, outcome in zip(granted, sent, strict=True):
                if isinstance(outcome, BaseException):  # finished or terminated meanwhile: skip it
                    workflow.logger.info("slot requester %s is gone", requester)
                    if requester in self._holders:
                        self._holders.remove(requester)
                        self._granted_today -= 1

    async def _reclaim(self) -> None:
        if not self._holders:
            return
        alive = await workflow.execute_activity_method(
            SlotActivities.running_workflows,
            list(self._holders),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        self._holders = [h for h in self._holders if h in alive]


class SlotLease:
    """What the block holding a slot reports back when it releases it: the run's model tokens."""

    def __init__(self) -> None:
        self.tokens = 0


class AgentSlotHolder:
    """Mixin for workflows that run the agent: `async with self.agent_slot(project_id): ...`."""

    _slot_granted = False
    _slot_refused: tuple[str, str] | None = None

    @workflow.signal(name="slot_granted")
    def slot_granted(self) -> None:
        self._slot_granted = True

    @workflow.signal(name="slot_refused")
    def slot_refused(self, reason: str, key: str) -> None:
        self._slot_refused = (reason, key)

    @contextlib.asynccontextmanager
    async def agent_slot(self, project_id: int, fork_author: str = "") -> AsyncIterator[SlotLease]:
        """Hold one of the project's agent slots for the block; set `lease.tokens` to the run's
        model tokens so they count against the project's daily token budget. `fork_author`: the
        author of a fork MR under review (per-author cap). Released on success, failure and
        cancellation; not when the worker evicts the workflow from its cache (a BaseException that is
        neither): the run resumes elsewhere by replay and releases there."""
        lease = SlotLease()
        try:
            await self.acquire_agent_slot(project_id, fork_author)
            yield lease
        except (Exception, asyncio.CancelledError):
            await asyncio.shield(asyncio.ensure_future(self.release_agent_slot(project_id, lease.tokens)))
            raise
        await self.release_agent_slot(project_id, lease.tokens)

    async def acquire_agent_slot(self, project_id: int, fork_author: str = "") -> None:
        self._slot_granted = False
        self._slot_refused = None
        await self._request_agent_slot(project_id, fork_author)
        await workflow.wait_condition(lambda: self._slot_granted or self._slot_refused is not None)
        if not self._slot_granted and self._slot_refused is not None:
            raise SlotRefused(*self._slot_refused)

    def early_agent_slot(self, project_id: int, fork_author: str = "") -> EarlySlot:
        """Ask for a slot now and take it later (`await slot.granted()`), so the slot's round trips
        overlap with what the run prepares meanwhile; `await slot.release()` in every case (it gives
        the slot back unused when no agent ran in it)."""
        self._slot_granted = False
        self._slot_refused = None
        request = asyncio.ensure_future(self._request_agent_slot(project_id, fork_author))
        return EarlySlot(self, project_id, request)

    async def _request_agent_slot(self, project_id: int, fork_author: str) -> None:
        await workflow.execute_activity_method(
            SlotActivities.request_slot,
            args=[project_id, workflow.info().workflow_id, *([fork_author] if fork_author else [])],
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )

    async def release_agent_slot(self, project_id: int, tokens: int = 0, unused: bool = False) -> None:
        # Without tokens the signal carries the one argument it always had (histories replay alike).
        args = [workflow.info().workflow_id, *([tokens] if tokens > 0 or unused else [])]
        if unused:
            args.append(True)
        try:
            await workflow.get_external_workflow_handle(
                slots_id(workflow.info().task_queue, project_id)
            ).signal("release", args=args)
        except Exception:  # the slots workflow reclaims slots of finished holders by itself
            workflow.logger.info("could not release the agent slot of project %s", project_id)


class EarlySlot:
    """A slot asked for ahead of the agent run (AgentSlotHolder.early_agent_slot)."""

    def __init__(self, holder: AgentSlotHolder, project_id: int, request: asyncio.Future[None]) -> None:
        self._holder = holder
        self._project_id = project_id
        self._request = request
        self._released = False
        self.used = False  # an agent ran (or started to run) in the slot
        self.tokens = 0  # the run's model tokens, for the project's daily token budget

    async def granted(self) -> None:
        """Wait for the slot; SlotRefused when the project's limits refuse the run."""
        holder = self._holder
        await self._request
        await workflow.wait_condition(lambda: holder._slot_granted or holder._slot_refused is not None)
        if not holder._slot_granted and holder._slot_refused is not None:
            raise SlotRefused(*holder._slot_refused)

    async def release(self, *, ending: bool = False) -> None:
        """Give the slot back (or leave the queue); once. The release waits for the request to have
        reached the slots workflow, so it cannot overtake it and leave a slot held for a run that
        goes on without it. `ending`: the run is being cancelled, so a request still retrying is
        cancelled instead (a grant arriving after the run has ended finds it gone)."""
        if self._released:
            return
        self._released = True
        if ending and not self._request.done():
            self._request.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._request
        await self._holder.release_agent_slot(self._project_id, self.tokens, unused=not self.used)
