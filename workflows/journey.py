"""GuestJourneyWorkflow: one reservation's journey, from booking to close.

The workflow holds the journey's state and decides; the planner
(`workflows/plan.py`) says what is due when; activities send messages and
write the read model. Handlers only change state and re-plan; the main loop
sleeps until the next moment or change, then acts.

The class keeps the main loop and the handlers; the work they share is in
small modules beside it: the state and its view (`journey_state`), re-planning
(`replanning`), sending a step's message (`step_sending`, `step_messages`),
another guest on the reservation (`guest_changes`), what each update refuses
(`update_checks`) and the `workflow.patched` ids (`patches`).
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from workflows import update_checks
from workflows.guest_changes import another_guest, forget_the_earlier_guest
from workflows.journey_state import (
    KEPT_MANUAL_STEPS,
    ack,
    forget_old_manual_steps,
    seen,
    view,
)
from workflows.patches import (
    CONTINUE_WHILE_BUSY,
    CURRENT_SHAPE,
    GUEST_REPLACED,
    RECORD_BEFORE_SLEEPING,
    patched,
)
from workflows.publishing import Publication
from workflows.replanning import next_wake, replan
from workflows.step_sending import carry_out, carry_out_resend, carry_out_send_again

with workflow.unsafe.imports_passed_through():
    from communications.channels.whatsapp import RE_ENGAGEMENT_REQUIRED
    from guest_journey.journeys import (
        Checkin,
        CheckinStatus,
        Feedback,
        FeedbackStatus,
        JourneyView,
        Stage,
        Step,
        StepKind,
        StepStatus,
        may_move,
    )
    from guest_journey.messages import message_id_for, message_key
    from guest_journey.reservations import Channel
    from workflows.channels import channels_for
    from workflows.journey_inputs import (
        CancelRequest,
        CheckinSubmission,
        FeedbackSubmission,
        InboundNotice,
        JourneyAck,
        JourneyInput,
        JourneySnapshot,
        JourneyState,
        ManualMessage,
        MessageFailedLater,
        OfferAnswer,
        PmsEvent,
        PmsEventType,
        ReservationUpdate,
        SendAgainRequest,
    )
    from workflows.plan import due_steps

# KEPT_MANUAL_STEPS stays importable from here, where it was first defined.
__all__ = ["KEPT_MANUAL_STEPS", "GuestJourneyWorkflow"]


@workflow.defn
class GuestJourneyWorkflow:
    @workflow.init
    def __init__(self, input: JourneyInput) -> None:
        self._s = input.state or JourneyState(
            reservation=input.reservation, policy=input.policy, created_request_id=input.request_id,
            shape=input.shape,
        )
        self._continue_after = input.continue_as_new_after_events
        self._woken = False
        self._sending = False  # the loop is carrying out a step (a send may take minutes)
        self._out = Publication()

    # -- main loop --------------------------------------------------------------

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyView:
        while True:
            replan(self._s)
            forget_old_manual_steps(self._s)
            self._out.search_attributes(self._s)
            await self._out.record(self._s)
            if self._s.stage.is_final:
                break
            if self._s.resends_due:
                await self._while_sending(carry_out_resend(self._s, self._s.resends_due[0]))
                continue
            if self._s.sends_again_due:
                await self._while_sending(carry_out_send_again(self._s, next(iter(self._s.sends_again_due))))
                continue
            due = due_steps(self._s.steps, workflow.now())
            if due and not self._continue_before_sending():
                await self._while_sending(carry_out(self._s, due[0]))
                continue
            if self._history_is_long():
                await workflow.wait_condition(self._handlers_finished_or_unrecorded)
                if self._unrecorded():
                    continue  # an update waits for its change to be recorded
                self._s.runs += 1
                self._s.shape = CURRENT_SHAPE  # a new run starts on the current shape
                workflow.continue_as_new(
                    JourneyInput(
                        reservation=self._s.reservation,
                        policy=self._s.policy,
                        request_id=self._s.created_request_id,
                        state=self._s,
                        continue_as_new_after_events=self._continue_after,
                    )
                )
            await self._sleep_until(next_wake(self._s))
        while True:
            await workflow.wait_condition(self._handlers_finished_or_unrecorded)
            if workflow.all_handlers_finished():
                break
            await self._out.record(self._s)
        await self._out.record(self._s)
        return view(self._s)

    async def _sleep_until(self, moment: datetime) -> None:
        self._woken = False
        timeout = max(moment - workflow.now(), timedelta(seconds=1))
        if patched(RECORD_BEFORE_SLEEPING, self._s.shape):
            # A handler that ran while the read model was being written changed the
            # journey after that write: wake at once so the change is recorded too.
            def woken() -> bool:
                return (
                    self._woken or self._out.recorded_revision != self._s.revision
                    or bool(self._s.resends_due) or bool(self._s.sends_again_due)
                )
        else:
            def woken() -> bool:
                return self._woken or bool(self._s.resends_due) or bool(self._s.sends_again_due)
        try:
            await workflow.wait_condition(woken, timeout=timeout)
        except TimeoutError:
            pass

    def _continue_before_sending(self) -> bool:
        """A long history continues as new before the next step is sent, not only when
        nothing is due: a stream of staff messages keeps steps due, and would keep the
        run growing past Temporal's suggestion. The new run sends what is due."""
        return self._history_is_long() and patched(CONTINUE_WHILE_BUSY, self._s.shape)

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() >= self._continue_after
        )

    def _changed(self) -> None:
        """A handler changed the journey: re-plan now so its answer is current, wake the loop."""
        self._s.revision += 1
        replan(self._s)
        self._woken = True

    # -- what the journey publishes ---------------------------------------------

    def _unrecorded(self) -> bool:
        return self._out.unrecorded(self._s)

    def _handlers_finished_or_unrecorded(self) -> bool:
        return workflow.all_handlers_finished() or self._out.unrecorded(self._s)

    async def _while_sending(self, sending: Coroutine[Any, Any, None]) -> None:
        self._sending = True
        try:
            await sending
        finally:
            self._sending = False

    async def _answered(self, answer: JourneyAck) -> JourneyAck:
        """An update's answer, once the read model holds its change (`publishing`). While
        the loop is sending (a send with its retries may take minutes) the update records
        its change itself rather than wait for the loop: a PUT never waits on a send."""
        await self._out.until_recorded(self._s, record=self._sending)
        return answer

    # -- queries ----------------------------------------------------------------

    @workflow.query
    def state(self) -> JourneyView:
        return view(self._s)

    # -- updates and signals ----------------------------------------------------

    @workflow.update
    async def update_reservation(self, update: ReservationUpdate) -> JourneyAck:
        if update.request_id == self._s.created_request_id:
            return await self._answered(ack(self._s, created=True))
        if seen(self._s, update.request_id):
            return await self._answered(ack(self._s))
        if update.reservation == self._s.reservation and update.policy == self._s.policy:
            return await self._answered(ack(self._s))
        if another_guest(self._s.reservation.guest, update.reservation.guest) and patched(GUEST_REPLACED, self._s.shape):
            forget_the_earlier_guest(self._s)
        self._s.reservation = update.reservation
        self._s.policy = update.policy
        self._changed()
        return await self._answered(ack(self._s, changed=True))

    @update_reservation.validator
    def _validate_reservation(self, update: ReservationUpdate) -> None:
        update_checks.update_reservation(self._s, update)

    @workflow.update
    async def cancel(self, request: CancelRequest) -> JourneyAck:
        if self._s.stage is Stage.cancelled or seen(self._s, request.request_id):
            return await self._answered(ack(self._s))
        self._s.stage = Stage.cancelled
        self._changed()
        return await self._answered(ack(self._s, changed=True))

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        update_checks.cancel(self._s, request)

    @workflow.update
    async def record_event(self, event: PmsEvent) -> JourneyAck:
        if seen(self._s, event.request_id):
            return await self._answered(ack(self._s))
        s = self._s
        at = event.at or workflow.now()
        before = s.stage
        if event.type is PmsEventType.checked_in and s.stage is Stage.pre_arrival:
            s.stage, s.checked_in_at = Stage.in_stay, at
        elif event.type is PmsEventType.checked_out and s.stage in (Stage.pre_arrival, Stage.in_stay, Stage.post_stay):
            s.stage, s.checked_out_at = Stage.post_stay, at
        elif event.type is PmsEventType.no_show and s.stage in (Stage.pre_arrival, Stage.in_stay):
            s.stage = Stage.no_show
        else:
            return await self._answered(ack(self._s, detail=f"{event.type} ignored: stage is already {s.stage}"))
        self._changed()
        return await self._answered(ack(self._s, changed=s.stage is not before or event.type is PmsEventType.checked_out))

    @record_event.validator
    def _validate_event(self, event: PmsEvent) -> None:
        update_checks.record_event(self._s, event)

    @workflow.update
    async def complete_checkin(self, submission: CheckinSubmission) -> JourneyAck:
        if seen(self._s, submission.request_id):
            return await self._answered(ack(self._s))
        self._s.checkin = Checkin(
            status=CheckinStatus.completed,
            completed_at=self._s.checkin.completed_at or workflow.now(),
            details=submission.details,
        )
        self._s.preferences = {**self._s.preferences, **submission.preferences}
        self._s.form_preferences = sorted({*self._s.form_preferences, *submission.preferences})
        self._changed()
        return await self._answered(ack(self._s, changed=True))

    @complete_checkin.validator
    def _validate_checkin(self, submission: CheckinSubmission) -> None:
        update_checks.complete_checkin(self._s, submission)

    @workflow.update
    async def answer_offer(self, answer: OfferAnswer) -> JourneyAck:
        if seen(self._s, answer.request_id) or answer.offer in self._s.answers:
            return await self._answered(ack(self._s, detail=f"offer {answer.offer} was already answered"))
        self._s.answers[answer.offer] = answer.accepted
        self._s.answered_at[answer.offer] = workflow.now()
        self._changed()
        return await self._answered(ack(self._s, changed=True))

    @answer_offer.validator
    def _validate_answer(self, answer: OfferAnswer) -> None:
        update_checks.answer_offer(self._s, answer)

    @workflow.update
    async def submit_feedback(self, submission: FeedbackSubmission) -> JourneyAck:
        if seen(self._s, submission.request_id) or self._s.feedback.status is FeedbackStatus.received:
            return await self._answered(ack(self._s, detail="feedback was already received"))
        self._s.feedback = Feedback(
            status=FeedbackStatus.received,
            score=submission.score,
            satisfaction=submission.satisfaction,
            comment=submission.comment,
            received_at=workflow.now(),
        )
        self._changed()
        return await self._answered(ack(self._s, changed=True))

    @submit_feedback.validator
    def _validate_feedback(self, submission: FeedbackSubmission) -> None:
        update_checks.submit_feedback(self._s, submission)

    @workflow.update
    async def send_message(self, message: ManualMessage) -> JourneyAck:
        key = f"{StepKind.manual.value}:{message.request_id}"
        channels = channels_for(self._s.reservation.guest, message.channel)
        first = message_id_for(message_key(self._s.reservation.reservation_id, key, channels[0]))
        if seen(self._s, message.request_id):
            return await self._answered(ack(self._s, message_id=first))
        self._s.manual_messages[key] = message
        self._s.steps = [
            *self._s.steps,
            Step(key=key, kind=StepKind.manual, status=StepStatus.planned, scheduled_for=workflow.now(),
                 template=message.template),
        ]
        self._changed()
        return await self._answered(ack(self._s, changed=True, message_id=first))

    @send_message.validator
    def _validate_message(self, message: ManualMessage) -> None:
        update_checks.send_message(self._s, message)

    @workflow.update
    async def send_again(self, request: SendAgainRequest) -> JourneyAck:
        """Staff send a step in doubt again: once, on its channel, with the same message id."""
        step = next(step for step in self._s.steps if step.key == request.step_key)
        if seen(self._s, request.request_id):
            return await self._answered(ack(self._s, message_id=step.message_id))
        self._s.sends_again_due[step.key] = request.request_id
        self._changed()
        return await self._answered(ack(self._s, changed=True, message_id=step.message_id))

    @send_again.validator
    def _validate_send_again(self, request: SendAgainRequest) -> None:
        update_checks.send_again(self._s, request)

    @workflow.update
    async def apply_snapshot(self, snapshot: JourneySnapshot) -> JourneyAck:
        return await self._answered(self._apply_snapshot(snapshot))

    @apply_snapshot.validator
    def _validate_snapshot(self, snapshot: JourneySnapshot) -> None:
        update_checks.apply_snapshot(self._s, snapshot)

    @workflow.signal
    def apply_snapshot_async(self, snapshot: JourneySnapshot) -> None:
        if self._s.stage.is_final or (snapshot.stage and not may_move(self._s.stage, snapshot.stage)):
            return
        self._apply_snapshot(snapshot)

    def _apply_snapshot(self, snapshot: JourneySnapshot) -> JourneyAck:
        if seen(self._s, snapshot.request_id):
            return ack(self._s)
        s = self._s
        if snapshot.preferences:
            s.preferences = {**s.preferences, **snapshot.preferences}
        if snapshot.stage is not None and snapshot.stage is not s.stage:
            s.stage = snapshot.stage
            if snapshot.stage is Stage.post_stay and s.checked_out_at is None:
                s.checked_out_at = workflow.now()
        if snapshot.nps is not None and s.feedback.status is not FeedbackStatus.received:
            s.feedback = Feedback(status=FeedbackStatus.received, score=snapshot.nps, received_at=workflow.now())
        self._changed()
        return ack(self._s, changed=True)

    @workflow.signal
    def record_inbound(self, notice: InboundNotice) -> None:
        previous = self._s.last_inbound_at.get(notice.channel.value)
        if previous is None or notice.received_at > previous:
            self._s.last_inbound_at[notice.channel.value] = notice.received_at
            self._changed()

    @workflow.signal
    def message_failed_later(self, failure: MessageFailedLater) -> None:
        """A step's message failed after its channel accepted it. WhatsApp free text
        refused because the 24-hour window had closed (131047) is sent again, once,
        as the approved template; any other late failure stays on the message only."""
        s = self._s
        if s.stage.is_final or failure.step_key in s.late_failures:
            return  # a redelivered webhook, or the step was sent again already
        if failure.channel is not Channel.whatsapp or failure.error_code != RE_ENGAGEMENT_REQUIRED:
            return
        step = next((step for step in s.steps if step.key == failure.step_key), None)
        if step is None or step.status not in (StepStatus.due, StepStatus.done):
            return
        first = message_id_for(message_key(s.reservation.reservation_id, step.key, Channel.whatsapp))
        if failure.message_id != first:
            return  # not the step's first WhatsApp message (the template sent again is never re-sent)
        s.late_failures[step.key] = failure
        s.resends_due.append(step.key)  # the main loop wakes for it
