"""Write a journey's state to the read model, so staff and analytics can read
it, also after the journey has finished."""

from __future__ import annotations

from temporalio import activity

from guest_journey.database import SessionFactory
from guest_journey.journeys import JourneyView
from guest_journey.read_model import save_journey


class JourneyRecorder:
    def __init__(self, *, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn
    async def record_journey(self, view: JourneyView) -> None:
        async with self._sessions() as session:
            await save_journey(session=session, view=view)
