"""Sending a step's message: through the guest's channels in order, falling
back on a failure that surely did not send; a step in doubt, sent again by
staff; a WhatsApp free text reported failed later, re-sent as its template; and
the journey ending (cancel, no-show) while a message is on its way.

Each function takes the journey's state and returns the step as sending left
it; the caller keeps it in the state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

from workflows.activity_errors import cause, failure_type
from workflows.journey_state import note_staff_offer, set_step
from workflows.step_messages import TEMPLATE_FOR_KIND, in_whatsapp_window, message_for

with workflow.unsafe.imports_passed_through():
    from activities.messaging import (
        HEARTBEAT_TIMEOUT,
        IN_DOUBT,
        NON_RETRYABLE_ERRORS,
        UNSUBSCRIBED,
        MessagingActivities,
    )
    from guest_journey.journeys import Stage, Step, StepKind, StepStatus
    from guest_journey.messages import (
        MessageFailureNotice,
        SendMessageInput,
        SendMessageResult,
        message_key,
        template_resend_key,
    )
    from guest_journey.reservations import Channel
    from workflows.channels import channels_for
    from workflows.journey_inputs import JourneyState

RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


# -- carrying out what is due ---------------------------------------------------


async def carry_out(s: JourneyState, step: Step) -> None:
    if step.kind is StepKind.close:
        s.stage = Stage.completed
        set_step(s, step.model_copy(update={"status": StepStatus.done, "done_at": workflow.now()}))
        return
    set_step(s, step.model_copy(update={"status": StepStatus.due}))
    sent = await unless_the_journey_ends(s, deliver(s, step))
    if sent is None:
        reason = f"stopped while sending: stage is {s.stage}"
        set_step(s, step.model_copy(update={"status": StepStatus.cancelled, "reason": reason}))
        return
    set_step(s, sent)
    note_staff_offer(s, sent)


async def carry_out_resend(s: JourneyState, key: str) -> None:
    step = next((step for step in s.steps if step.key == key), None)
    # A step that went out on another channel after all (or not at all) has nothing to re-send.
    if step is not None and step.status is StepStatus.done and step.channel == Channel.whatsapp.value:
        resent = await unless_the_journey_ends(s, resend_as_template(s, step))
        if resent is not None:
            set_step(s, resent)
    s.resends_due.remove(key)


async def carry_out_send_again(s: JourneyState, key: str) -> None:
    """Staff asked to send a step in doubt again: once, on the channel it was in doubt on."""
    request_id = s.sends_again_due[key]
    step = next((step for step in s.steps if step.key == key), None)
    if step is not None and step.status is StepStatus.in_doubt and step.channel is not None:
        sent = await unless_the_journey_ends(s, send_again(s, step, request_id))
        if sent is not None:
            set_step(s, sent)
            note_staff_offer(s, sent)
    del s.sends_again_due[key]


async def unless_the_journey_ends(s: JourneyState, sending: Coroutine[Any, Any, Step]) -> Step | None:
    """The step as sending left it; None when the journey ended (cancel, no-show) first."""
    delivery = asyncio.create_task(sending)
    await workflow.wait_condition(lambda: delivery.done() or s.stage.is_final)
    if not delivery.done():
        # The journey ended while sending: an attempt under way may finish
        # (and is then recorded truly); one waiting to retry is abandoned.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(delivery.done, timeout=s.policy.delivery.attempt_timeout)
    if not delivery.done():
        delivery.cancel()
        with contextlib.suppress(asyncio.CancelledError, ActivityError, CancelledError):
            await delivery
        return None
    return delivery.result()


# -- sending --------------------------------------------------------------------


async def deliver(s: JourneyState, step: Step) -> Step:
    manual = s.manual_messages.get(step.key)
    template = manual.template if manual else TEMPLATE_FOR_KIND[step.kind]
    channels = channels_for(s.reservation.guest, manual.channel if manual else None)
    if not channels:
        reason = "no channel reaches the guest (no e-mail, phone or chosen web chat)"
        return await failed(s, step, template, channels, reason)
    failures = []
    for channel in channels:
        key = message_key(s.reservation.reservation_id, step.key, channel)
        message = message_for(s, step, template, channel, key, window_open=in_whatsapp_window(s))
        try:
            result = await send(s, message)
        except ActivityError as error:
            if isinstance(error.cause, CancelledError):
                raise
            if isinstance(error.cause, ApplicationError) and error.cause.type == UNSUBSCRIBED:
                s.unsubscribed = True  # the planner skips every offer from now on
                return step.model_copy(update={"status": StepStatus.skipped, "reason": error.cause.message})
            if failure_type(error) == IN_DOUBT:  # no fallback: the guest may have it already
                return in_doubt(step, template, channel, message.message_id, cause(error))
            failures.append(f"{channel}: {cause(error)}")
            continue
        return done(step, template, channel, result)
    return await failed(s, step, template, channels, "every channel failed: " + "; ".join(failures))


async def send_again(s: JourneyState, step: Step, request_id: str) -> Step:
    assert step.channel is not None, "a step in doubt names the channel it was sent on"
    channel = Channel(step.channel)
    template = step.template or TEMPLATE_FOR_KIND[step.kind]
    key = message_key(s.reservation.reservation_id, step.key, channel)
    message = message_for(s, step, template, channel, key, window_open=in_whatsapp_window(s))
    message = message.model_copy(update={"send_again_request": request_id})
    try:
        result = await send(s, message)
    except ActivityError as error:
        if isinstance(error.cause, CancelledError):
            raise
        if failure_type(error) == IN_DOUBT:
            return in_doubt(step, template, channel, message.message_id, cause(error))
        return await failed(s, step, template, [channel], f"{channel}: sent again by staff: {cause(error)}")
    return done(step, template, channel, result)


async def resend_as_template(s: JourneyState, step: Step) -> Step:
    """Send a done step again on WhatsApp as its approved template: its free text
    was reported failed after it was sent, because the 24-hour window had closed."""
    failure = s.late_failures[step.key]
    template = step.template or TEMPLATE_FOR_KIND[step.kind]
    key = template_resend_key(message_key(s.reservation.reservation_id, step.key, Channel.whatsapp))
    why = f"the free text was reported failed after it was sent ({failure.reason or 'no reason given'})"
    note = f"sent again as template {template!r}: {why}; the failed message is {failure.message_id}"
    message = message_for(s, step, template, Channel.whatsapp, key, window_open=False, note=note)
    try:
        result = await send(s, message)
    except ActivityError as error:
        if isinstance(error.cause, CancelledError):
            raise
        if isinstance(error.cause, ApplicationError) and error.cause.type == UNSUBSCRIBED:
            s.unsubscribed = True
        reason = f"whatsapp: {why}; sending it again as template {template!r} failed: {cause(error)}"
        return await failed(s, step, template, [Channel.whatsapp], reason)
    return step.model_copy(
        update={"message_id": result.message_id, "reason": f"whatsapp: {why}; sent again as template {template!r}"}
    )


def done(step: Step, template: str, channel: Channel, result: SendMessageResult) -> Step:
    return step.model_copy(
        update={
            "status": StepStatus.done,
            "done_at": workflow.now(),
            "channel": channel.value,
            "message_id": result.message_id,
            "template": template,
            "reason": result.note or step.reason,
        }
    )


def in_doubt(step: Step, template: str, channel: Channel, message_id: str, reason: str) -> Step:
    """The provider may have the message: staff see it and decide whether to send it again."""
    return step.model_copy(
        update={
            "status": StepStatus.in_doubt,
            "done_at": workflow.now(),
            "channel": channel.value,
            "message_id": message_id,
            "template": template,
            "reason": f"{channel}: {reason}",
        }
    )


# -- the activities -------------------------------------------------------------


async def send(s: JourneyState, message: SendMessageInput) -> SendMessageResult:
    delivery = s.policy.delivery
    return await workflow.execute_activity_method(
        MessagingActivities.send_message,
        message,
        # An attempt in doubt may wait for the provider's status report.
        start_to_close_timeout=delivery.attempt_timeout + delivery.wait_for_provider_status,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        schedule_to_close_timeout=delivery.give_up_on_channel_after,
        # A cancelled journey stops waiting at once; no cancel request
        # races an activity that may already have finished.
        cancellation_type=ActivityCancellationType.ABANDON,
        retry_policy=RetryPolicy(
            initial_interval=delivery.first_retry_after,
            maximum_interval=delivery.max_retry_interval,
            backoff_coefficient=2.0,
            non_retryable_error_types=list(NON_RETRYABLE_ERRORS),
        ),
    )


async def failed(s: JourneyState, step: Step, template: str, channels: list[Channel], reason: str) -> Step:
    await workflow.execute_activity_method(
        MessagingActivities.record_guest_message_failure,
        MessageFailureNotice(
            reservation_id=s.reservation.reservation_id,
            hotel_id=s.reservation.hotel_id,
            step_key=step.key,
            template=template,
            channels=channels,
            reason=reason,
        ),
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RECORD_RETRY,
    )
    return step.model_copy(update={"status": StepStatus.failed, "reason": reason, "template": template})
