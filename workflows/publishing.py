"""What a journey publishes: its read model and its search attributes.

A run on the `ANSWER_WHEN_RECORDED` shape (`workflows.patches`) is given its
search attributes with its start, writes the read model by a local activity
(in the workflow task itself: no second task), and answers each update once
the read model holds its change, so a read from the read model after the
answer sees it. Earlier runs keep the shape they started with.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows.journey_state import view
from workflows.patches import ANSWER_WHEN_RECORDED
from workflows.step_sending import RECORD_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.journey_record import JourneyRecorder
    from guest_journey import temporal
    from guest_journey.journeys import Stage
    from workflows.journey_inputs import JourneyState


def answers_when_recorded(s: JourneyState) -> bool:
    return s.shape >= ANSWER_WHEN_RECORDED


class Publication:
    """What the journey has published so far in this run."""

    def __init__(self) -> None:
        self.recorded_revision = -1
        self._search_attributes: tuple[Stage, datetime] | None = None

    def unrecorded(self, s: JourneyState) -> bool:
        """A change an update waits for is not in the read model yet."""
        return answers_when_recorded(s) and self.recorded_revision != s.revision

    async def until_recorded(self, s: JourneyState, *, record: bool = False) -> None:
        """Return once the read model holds the journey as it is now (earlier shapes: at
        once); with `record`, write it from here rather than wait for the main loop."""
        if answers_when_recorded(s):
            revision = s.revision
            if record:
                await self.record(s)
            await workflow.wait_condition(lambda: self.recorded_revision >= revision)

    async def record(self, s: JourneyState) -> None:
        """Write the read model when the journey changed since it was last written."""
        if self.recorded_revision == s.revision:
            return
        journey = view(s)
        if answers_when_recorded(s):
            await workflow.execute_local_activity_method(
                JourneyRecorder.record_journey,
                journey,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
            )
        else:
            await workflow.execute_activity_method(
                JourneyRecorder.record_journey,
                journey,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
            )
        self.recorded_revision = max(self.recorded_revision, journey.revision)

    def search_attributes(self, s: JourneyState) -> None:
        """Upsert the stage and arrival when they changed (and the ids the first time),
        unless the run was started with them."""
        current = (s.stage, s.reservation.arrival)
        if current == self._search_attributes:
            return
        if self._search_attributes is None and answers_when_recorded(s) and started_with(s):
            self._search_attributes = current
            return
        updates: list[SearchAttributeUpdate[Any]] = [
            temporal.JOURNEY_STAGE.value_set(s.stage.value),
            temporal.ARRIVAL_DATE.value_set(s.reservation.arrival),
        ]
        if self._search_attributes is None:
            updates += [
                temporal.RESERVATION_ID.value_set(s.reservation.reservation_id),
                temporal.HOTEL_ID.value_set(s.reservation.hotel_id),
            ]
        workflow.upsert_search_attributes(updates)
        self._search_attributes = current


def started_with(s: JourneyState) -> bool:
    """The run's start carried the search attributes the journey has now."""
    given = workflow.info().typed_search_attributes
    return (
        given.get(temporal.JOURNEY_STAGE) == s.stage.value
        and given.get(temporal.ARRIVAL_DATE) == s.reservation.arrival
        and given.get(temporal.RESERVATION_ID) == s.reservation.reservation_id
        and given.get(temporal.HOTEL_ID) == s.reservation.hotel_id
    )
