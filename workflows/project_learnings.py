"""ProjectLearnings: the project notes one project's reviews have learned from rebuttals.

One long-lived workflow per project and task queue (`learnings:<queue>:<project>`), started by the
first `learn` signal (signal-with-start from the review's `record_learnings` activity). Its state is
the notes (at most MAX_LEARNINGS, the oldest dropped first); reviews read them with the `learnings`
query (`project_learnings` activity) and show them to the model as untrusted data. Operators read
and prune them with the Temporal CLI (README, "The finding ledger"):

    temporal workflow query  --workflow-id learnings:<queue>:<project> --type learnings
    temporal workflow signal --workflow-id learnings:<queue>:<project> --name forget --input '"L-..."'

Only the review activity decides what is learned (core/ledger.py: a rebuttal with a reason from a
project member at or above DISMISS_MIN_ACCESS, never a non-member, never the MR branch); this
workflow only keeps what it is given.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.ledger import MAX_LEARNINGS, Learning, learnings_id
    from workflows.inputs import start_input

CONTINUE_AFTER_SIGNALS = 500
__all__ = ["ProjectLearnings", "learnings_id"]


@workflow.defn(name="ProjectLearnings")
class ProjectLearnings:
    def __init__(self) -> None:
        self._notes: list[Learning] = []
        self._signals = 0

    @workflow.signal
    def learn(self, note: Learning) -> None:
        self._signals += 1
        if any(n.id == note.id for n in self._notes):
            return  # one note per rebutted finding, however often it is reported
        self._notes = (self._notes + [note])[-MAX_LEARNINGS:]

    @workflow.signal
    def forget(self, note_id: str) -> None:
        self._signals += 1
        self._notes = [n for n in self._notes if n.id != note_id]

    @workflow.query
    def learnings(self) -> list[Learning]:
        return list(self._notes)

    @workflow.run
    async def run(self, *carried: Any) -> None:
        # Signals handled before run() (signal-with-start) come after the carried-over notes.
        # The carried notes are a start input too: a bad one by hand fails the run with the reason.
        earlier = start_input(list[Learning], carried) if carried and carried[0] is not None else []
        ids = {n.id for n in self._notes}
        self._notes = ([n for n in earlier if n.id not in ids] + self._notes)[-MAX_LEARNINGS:]
        await workflow.wait_condition(lambda: self._signals >= CONTINUE_AFTER_SIGNALS)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new([n.model_dump() for n in self._notes])
