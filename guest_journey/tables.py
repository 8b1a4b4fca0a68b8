"""Every table of the app's database, registered on `SQLModel.metadata` by importing its module.

The migrations (`guest_journey/migrations/env.py`) and the tests compare the
database with this metadata, so a new table module is added here and nowhere else.
"""

from __future__ import annotations

from sqlmodel import SQLModel

import communications.mail_in_store  # noqa: F401  (each import registers its tables)
import communications.message_days  # noqa: F401
import communications.message_status  # noqa: F401
import communications.message_store  # noqa: F401
import communications.staff_texts  # noqa: F401
import communications.unsubscribes  # noqa: F401
import guest_journey.gdpr_audit  # noqa: F401
import guest_journey.idempotent_requests  # noqa: F401
import guest_journey.journey_keys  # noqa: F401
import guest_journey.read_model  # noqa: F401
import guest_journey.staff_sessions  # noqa: F401
import services.conversation_state  # noqa: F401
import services.kpi_tables  # noqa: F401
import services.snapshot_pending  # noqa: F401

metadata = SQLModel.metadata
