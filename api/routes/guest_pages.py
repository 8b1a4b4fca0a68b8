"""The guest pages (CONTRACT §2 "Guests"): signed links, no API key.

`/guest/{token}/check-in`, `/guest/{token}/offers/{offer}`,
`/guest/{token}/feedback` and `/guest/{token}/chat`, server-rendered in the
guest's language; see `api/guest/`.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.guest import chat, checkin, feedback, offers
from api.guest.errors import GuestRoute

router = APIRouter(prefix="/guest", tags=["guest pages"], route_class=GuestRoute, include_in_schema=False)
router.include_router(checkin.router)
router.include_router(offers.router)
router.include_router(feedback.router)
router.include_router(chat.router)
