"""What an activity's failure says: its type and its message, as the journey reads them."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError


def failure_type(error: ActivityError) -> str | None:
    """The `ApplicationError` type the activity raised (`IN_DOUBT`, `UNSUBSCRIBED`, ...), if any."""
    return error.cause.type if isinstance(error.cause, ApplicationError) else None


def cause(error: ActivityError) -> str:
    """The failure's message, for a step's reason."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)
