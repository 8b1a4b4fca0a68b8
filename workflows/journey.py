"""GuestJourneyWorkflow: one reservation's journey, from booking to close.

The workflow holds the journey's state and decides; the planner
(`workflows/plan.py`) says what is due when; activities send messages and
write the read model. Handlers only change state and re-plan; the main loop
sleeps until the next moment or change, then acts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.journey_record import JourneyRecorder
    from activities.messaging import (
        HEARTBEAT_TIMEOUT,
        IN_DOUBT,
        NON_RETRYABLE_ERRORS,
        UNSUBSCRIBED,
        MessagingActivities,
    )
    from communications.channels.whatsapp import RE_ENGAGEMENT_REQUIRED
    from guest_journey import temporal
    from guest_journey.journeys import (
        Checkin,
        CheckinStatus,
        Feedback,
        FeedbackStatus,
        GuestChange,
        JourneyView,
        Stage,
        Step,
        StepKind,
        StepStatus,
        Upsell,
        UpsellStatus,
        may_move,
        workflow_id_for,
    )
    from guest_journey.messages import (
        MessageFailureNotice,
        SendMessageInput,
        SendMessageResult,
        message_id_for,
        message_key,
        template_resend_key,
    )
    from guest_journey.reservations import Channel, Guest
    from workflows.channels import channels_for
    from workflows.journey_inputs import (
        HOTEL_CHANGED,
        INVALID_REQUEST,
        JOURNEY_FINISHED,
        OFFER_NOT_OFFERED,
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
    from workflows.plan import (
        JourneyFacts,
        due_steps,
        next_moment,
        plan_steps,
        stage_by_time,
        upsell_key,
    )

TEMPLATE_FOR_KIND = {
    StepKind.checkin_invitation: "checkin_invitation",
    StepKind.checkin_reminder: "checkin_reminder",
    StepKind.upsell: "upsell_offer",
    StepKind.upsell_follow_up: "upsell_follow_up",
    StepKind.guest_post_stay_feedback: "guest_post_stay_feedback",
    StepKind.feedback_reminder: "feedback_reminder",
}
MARKETING_KINDS = frozenset({StepKind.upsell, StepKind.upsell_follow_up})
# A staff message in an offer template is marketing too: List-Unsubscribe, and not to the unsubscribed.
# (Only the activity input changes, no command: recorded histories replay without a patch.)
OFFER_TEMPLATES = frozenset(TEMPLATE_FOR_KIND[kind] for kind in MARKETING_KINDS)
REMEMBERED_REQUESTS = 200
RECORD_BEFORE_SLEEPING = "record-before-sleeping"  # workflow.patched id
CHECKIN_MARKETING_CONSENT = "checkin-marketing-consent"  # workflow.patched id
BOUNDED_MANUAL_STEPS = "bounded-manual-steps"  # workflow.patched id
CONTINUE_WHILE_BUSY = "continue-while-busy"  # workflow.patched id
GUEST_REPLACED = "guest-replaced"  # workflow.patched id
KEPT_GUEST_CHANGES = 10
# The check-in form's preference keys (api/guest/checkin_form.py `submission`): cleared for
# another guest when a journey checked in before it noted which keys its form gave.
CHECKIN_FORM_PREFERENCES = ("bed", "pillow", "dietary", "accessibility", "arrival_notes")
KEPT_MANUAL_STEPS = 20  # settled staff messages kept in the state (and the read model's steps)
FORGETTABLE = frozenset({StepStatus.done, StepStatus.failed, StepStatus.cancelled, StepStatus.skipped})
WHATSAPP_WINDOW = timedelta(hours=24)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn
class GuestJourneyWorkflow:
    @workflow.init
    def __init__(self, input: JourneyInput) -> None:
        self._s = input.state or JourneyState(
            reservation=input.reservation, policy=input.policy, created_request_id=input.request_id
        )
        self._continue_after = input.continue_as_new_after_events
        self._woken = False
        self._recorded_revision = -1
        self._published: tuple[Stage, datetime] | None = None

    # -- main loop --------------------------------------------------------------

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyView:
        while True:
            self._replan()
            self._forget_old_manual_steps()
            self._publish_search_attributes()
            await self._record()
            if self._s.stage.is_final:
                break
            if self._s.resends_due:
                await self._carry_out_resend(self._s.resends_due[0])
                continue
            if self._s.sends_again_due:
                await self._carry_out_send_again(next(iter(self._s.sends_again_due)))
                continue
            due = due_steps(self._s.steps, workflow.now())
            if due and not self._continue_before_sending():
                await self._carry_out(due[0])
                continue
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._s.runs += 1
                workflow.continue_as_new(
                    JourneyInput(
                        reservation=self._s.reservation,
                        policy=self._s.policy,
                        request_id=self._s.created_request_id,
                        state=self._s,
                        continue_as_new_after_events=self._continue_after,
                    )
                )
            await self._sleep_until(self._next_wake())
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._record()
        return self._view()

    async def _sleep_until(self, moment: datetime) -> None:
        self._woken = False
        timeout = max(moment - workflow.now(), timedelta(seconds=1))
        if workflow.patched(RECORD_BEFORE_SLEEPING):
            # A handler that ran while the read model was being written changed the
            # journey after that write: wake at once so the change is recorded too.
            def woken() -> bool:
                return (
                    self._woken or self._recorded_revision != self._s.revision
                    or bool(self._s.resends_due) or bool(self._s.sends_again_due)
                )
        else:
            def woken() -> bool:
                return self._woken or bool(self._s.resends_due) or bool(self._s.sends_again_due)
        try:
            await workflow.wait_condition(woken, timeout=timeout)
        except TimeoutError:
            pass

    def _next_wake(self) -> datetime:
        moments = [m for m in (next_moment(self._s.steps), self._stage_boundary()) if m is not None]
        return min(moments)

    def _stage_boundary(self) -> datetime | None:
        if self._s.stage is Stage.pre_arrival:
            return self._s.reservation.arrival
        if self._s.stage is Stage.in_stay:
            return self._s.reservation.departure
        return None

    def _continue_before_sending(self) -> bool:
        """A long history continues as new before the next step is sent, not only when
        nothing is due: a stream of staff messages keeps steps due, and would keep the
        run growing past Temporal's suggestion. The new run sends what is due."""
        return self._history_is_long() and workflow.patched(CONTINUE_WHILE_BUSY)

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() >= self._continue_after
        )

    # -- planning ---------------------------------------------------------------

    def _replan(self) -> None:
        """Advance the stage by time, then re-plan every step not yet settled."""
        now = workflow.now()
        s = self._s
        s.stage = stage_by_time(s.stage, s.reservation, now)
        facts = JourneyFacts(
            stage=s.stage,
            checkin_completed=s.checkin.status is CheckinStatus.completed,
            checkin_marketing_consent=self._checkin_marketing_consent(),
            checked_out_at=s.checked_out_at,
            answered_offers=list(s.answers),
            feedback_received=s.feedback.status is FeedbackStatus.received,
            unsubscribed=s.unsubscribed,
            steps=s.steps,
        )
        steps = plan_steps(s.reservation, s.policy, facts, now)
        if steps != s.steps:
            s.steps = steps
            s.revision += 1
        if s.feedback.status is FeedbackStatus.pending and self._step_done("guest_post_stay_feedback"):
            s.feedback = s.feedback.model_copy(update={"status": FeedbackStatus.requested})

    def _checkin_marketing_consent(self) -> bool | None:
        """The guest's answer to "send me offers" on the check-in form, if given."""
        checkin = self._s.checkin
        answer = checkin.details.get("marketing_consent")
        if checkin.status is not CheckinStatus.completed or not isinstance(answer, bool):
            return None
        # Journeys that were checked in before the planner heeded the answer replay as they ran.
        return answer if workflow.patched(CHECKIN_MARKETING_CONSENT) else None

    def _changed(self) -> None:
        """A handler changed the journey: re-plan now so its answer is current, wake the loop."""
        self._s.revision += 1
        self._replan()
        self._woken = True

    # -- carrying out a step ----------------------------------------------------

    async def _carry_out(self, step: Step) -> None:
        if step.kind is StepKind.close:
            self._s.stage = Stage.completed
            self._set_step(step.model_copy(update={"status": StepStatus.done, "done_at": workflow.now()}))
            return
        self._set_step(step.model_copy(update={"status": StepStatus.due}))
        sent = await self._unless_the_journey_ends(self._deliver(step))
        if sent is None:
            reason = f"stopped while sending: stage is {self._s.stage}"
            self._set_step(step.model_copy(update={"status": StepStatus.cancelled, "reason": reason}))
            return
        self._set_step(sent)
        self._note_staff_offer(sent)

    async def _carry_out_resend(self, key: str) -> None:
        step = next((step for step in self._s.steps if step.key == key), None)
        # A step that went out on another channel after all (or not at all) has nothing to re-send.
        if step is not None and step.status is StepStatus.done and step.channel == Channel.whatsapp.value:
            resent = await self._unless_the_journey_ends(self._resend_as_template(step))
            if resent is not None:
                self._set_step(resent)
        self._s.resends_due.remove(key)

    async def _carry_out_send_again(self, key: str) -> None:
        """Staff asked to send a step in doubt again: once, on the channel it was in doubt on."""
        request_id = self._s.sends_again_due[key]
        step = next((step for step in self._s.steps if step.key == key), None)
        if step is not None and step.status is StepStatus.in_doubt and step.channel is not None:
            sent = await self._unless_the_journey_ends(self._send_again(step, request_id))
            if sent is not None:
                self._set_step(sent)
                self._note_staff_offer(sent)
        del self._s.sends_again_due[key]

    async def _send_again(self, step: Step, request_id: str) -> Step:
        s = self._s
        assert step.channel is not None, "a step in doubt names the channel it was sent on"
        channel = Channel(step.channel)
        template = step.template or TEMPLATE_FOR_KIND[step.kind]
        key = message_key(s.reservation.reservation_id, step.key, channel)
        message = self._message(step, template, channel, key, window_open=self._in_whatsapp_window())
        message = message.model_copy(update={"send_again_request": request_id})
        try:
            result = await self._send(message)
        except ActivityError as error:
            if isinstance(error.cause, CancelledError):
                raise
            if _failure_type(error) == IN_DOUBT:
                return self._in_doubt(step, template, channel, message.message_id, _cause(error))
            return await self._failed(step, template, [channel], f"{channel}: sent again by staff: {_cause(error)}")
        return self._done(step, template, channel, result)

    async def _unless_the_journey_ends(self, sending: Coroutine[Any, Any, Step]) -> Step | None:
        """The step as sending left it; None when the journey ended (cancel, no-show) first."""
        delivery = asyncio.create_task(sending)
        await workflow.wait_condition(lambda: delivery.done() or self._s.stage.is_final)
        if not delivery.done():
            # The journey ended while sending: an attempt under way may finish
            # (and is then recorded truly); one waiting to retry is abandoned.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(delivery.done, timeout=self._s.policy.delivery.attempt_timeout)
        if not delivery.done():
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError, ActivityError, CancelledError):
                await delivery
            return None
        return delivery.result()

    async def _deliver(self, step: Step) -> Step:
        s = self._s
        manual = s.manual_messages.get(step.key)
        template = manual.template if manual else TEMPLATE_FOR_KIND[step.kind]
        channels = channels_for(s.reservation.guest, manual.channel if manual else None)
        if not channels:
            reason = "no channel reaches the guest (no e-mail, phone or chosen web chat)"
            return await self._failed(step, template, channels, reason)
        failures = []
        for channel in channels:
            key = message_key(s.reservation.reservation_id, step.key, channel)
            message = self._message(step, template, channel, key, window_open=self._in_whatsapp_window())
            try:
                result = await self._send(message)
            except ActivityError as error:
                if isinstance(error.cause, CancelledError):
                    raise
                if isinstance(error.cause, ApplicationError) and error.cause.type == UNSUBSCRIBED:
                    self._s.unsubscribed = True  # the planner skips every offer from now on
                    return step.model_copy(update={"status": StepStatus.skipped, "reason": error.cause.message})
                if _failure_type(error) == IN_DOUBT:  # no fallback: the guest may have it already
                    return self._in_doubt(step, template, channel, message.message_id, _cause(error))
                failures.append(f"{channel}: {_cause(error)}")
                continue
            return self._done(step, template, channel, result)
        return await self._failed(step, template, channels, "every channel failed: " + "; ".join(failures))

    def _done(self, step: Step, template: str, channel: Channel, result: SendMessageResult) -> Step:
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

    def _in_doubt(self, step: Step, template: str, channel: Channel, message_id: str, reason: str) -> Step:
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

    async def _resend_as_template(self, step: Step) -> Step:
        """Send a done step again on WhatsApp as its approved template: its free text
        was reported failed after it was sent, because the 24-hour window had closed."""
        s = self._s
        failure = s.late_failures[step.key]
        template = step.template or TEMPLATE_FOR_KIND[step.kind]
        key = template_resend_key(message_key(s.reservation.reservation_id, step.key, Channel.whatsapp))
        why = f"the free text was reported failed after it was sent ({failure.reason or 'no reason given'})"
        note = f"sent again as template {template!r}: {why}; the failed message is {failure.message_id}"
        message = self._message(step, template, Channel.whatsapp, key, window_open=False, note=note)
        try:
            result = await self._send(message)
        except ActivityError as error:
            if isinstance(error.cause, CancelledError):
                raise
            if isinstance(error.cause, ApplicationError) and error.cause.type == UNSUBSCRIBED:
                self._s.unsubscribed = True
            reason = f"whatsapp: {why}; sending it again as template {template!r} failed: {_cause(error)}"
            return await self._failed(step, template, [Channel.whatsapp], reason)
        return step.model_copy(
            update={"message_id": result.message_id, "reason": f"whatsapp: {why}; sent again as template {template!r}"}
        )

    def _message(
        self, step: Step, template: str, channel: Channel, key: str, *, window_open: bool, note: str | None = None
    ) -> SendMessageInput:
        s = self._s
        manual = s.manual_messages.get(step.key)
        return SendMessageInput(
            message_id=message_id_for(key),
            message_key=key,
            reservation_id=s.reservation.reservation_id,
            hotel_id=s.reservation.hotel_id,
            step_key=step.key,
            template=template,
            channel=channel,
            guest=s.reservation.guest,
            marketing=step.kind in MARKETING_KINDS or template in OFFER_TEMPLATES,
            in_reply_to=manual.in_reply_to if manual else None,
            window_open=window_open,
            context=self._template_context(step, manual),
            note=note,
            wait_for_provider_status=s.policy.delivery.wait_for_provider_status,
        )

    async def _send(self, message: SendMessageInput) -> SendMessageResult:
        delivery = self._s.policy.delivery
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

    async def _failed(self, step: Step, template: str, channels: list[Channel], reason: str) -> Step:
        s = self._s
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

    def _in_whatsapp_window(self) -> bool:
        """WhatsApp allows free text for 24 h after the guest last wrote on it."""
        last = self._s.last_inbound_at.get(Channel.whatsapp.value)
        return last is not None and workflow.now() - last < WHATSAPP_WINDOW

    def _template_context(self, step: Step, manual: ManualMessage | None) -> dict[str, Any]:
        """The template's values: staff's context, then the journey's own facts,
        which staff cannot override (the dates, the room, the hotel)."""
        s = self._s
        context: dict[str, Any] = {"journey_stage": s.stage.value}
        if manual:
            context.update(manual.context)
        context |= {
            "step_key": step.key,
            "arrival": s.reservation.arrival.isoformat(),
            "departure": s.reservation.departure.isoformat(),
            "room_type": s.reservation.room_type,
            "hotel_timezone": s.policy.hotel_timezone,
            "hotel_name": s.policy.hotel_name,
        }
        offer_name = step.offer or (manual.context.get("upsell_offer") if manual else None)
        offer = s.policy.offer(offer_name) if isinstance(offer_name, str) else None
        if offer is not None:
            context.update(upsell_offer=offer.offer, offer_price=offer.price, offer_currency=offer.currency)
        return context

    async def _record(self) -> None:
        """Write the read model when the journey changed since it was last written."""
        if self._recorded_revision == self._s.revision:
            return
        view = self._view()
        await workflow.execute_activity_method(
            JourneyRecorder.record_journey,
            view,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
        )
        self._recorded_revision = view.revision

    def _publish_search_attributes(self) -> None:
        s = self._s
        current = (s.stage, s.reservation.arrival)
        if current == self._published:
            return
        updates: list[SearchAttributeUpdate[Any]] = [
            temporal.JOURNEY_STAGE.value_set(s.stage.value),
            temporal.ARRIVAL_DATE.value_set(s.reservation.arrival),
        ]
        if self._published is None:
            updates += [
                temporal.RESERVATION_ID.value_set(s.reservation.reservation_id),
                temporal.HOTEL_ID.value_set(s.reservation.hotel_id),
            ]
        workflow.upsert_search_attributes(updates)
        self._published = current

    # -- state helpers ----------------------------------------------------------

    def _set_step(self, step: Step) -> None:
        self._s.steps = [step if existing.key == step.key else existing for existing in self._s.steps]
        self._s.revision += 1

    def _note_staff_offer(self, step: Step) -> None:
        """A staff message that carried an offer (`context.upsell_offer`) offered it to the guest."""
        manual = self._s.manual_messages.get(step.key)
        offer = manual.context.get("upsell_offer") if manual else None
        if (
            isinstance(offer, str) and step.status in (StepStatus.done, StepStatus.in_doubt)
            and offer not in self._s.staff_offers
        ):
            self._s.staff_offers = [*self._s.staff_offers, offer]

    def _step_done(self, key: str) -> bool:
        return any(step.key == key and step.status is StepStatus.done for step in self._s.steps)

    def _forget_old_manual_steps(self) -> None:
        """Keep the state small however many messages staff send: only the last
        KEPT_MANUAL_STEPS settled manual steps stay, with the message each was asked
        for; older ones are dropped (the message table keeps every message). A step
        in doubt stays (staff may send it again), as does one due to be re-sent."""
        s = self._s
        if not workflow.patched(BOUNDED_MANUAL_STEPS):
            return  # a history recorded before replays as it ran
        settled = [
            step.key for step in s.steps
            if step.kind is StepKind.manual and step.status in FORGETTABLE and step.key not in s.resends_due
        ]
        forgotten = set(settled[:-KEPT_MANUAL_STEPS])
        if not forgotten:
            return
        s.steps = [step for step in s.steps if step.key not in forgotten]
        for key in forgotten:
            s.manual_messages.pop(key, None)
            s.late_failures.pop(key, None)

    def _ack(self, **fields: Any) -> JourneyAck:
        r = self._s.reservation
        return JourneyAck(
            reservation_id=r.reservation_id,
            workflow_id=workflow_id_for(r.reservation_id),
            stage=self._s.stage,
            **fields,
        )

    def _seen(self, request_id: str) -> bool:
        """True for a request already applied (a retry); remembers new ones."""
        if request_id in self._s.applied_requests or request_id == self._s.created_request_id:
            return True
        self._s.applied_requests = [*self._s.applied_requests, request_id][-REMEMBERED_REQUESTS:]
        return False

    def _view(self) -> JourneyView:
        s = self._s
        r = s.reservation
        return JourneyView(
            reservation_id=r.reservation_id,
            workflow_id=workflow_id_for(r.reservation_id),
            hotel_id=r.hotel_id,
            stage=s.stage,
            guest=r.guest,
            arrival=r.arrival,
            departure=r.departure,
            room_type=r.room_type,
            rate_plan=r.rate_plan,
            steps=s.steps,
            upsells=self._upsells(),
            checkin=s.checkin,
            feedback=s.feedback,
            preferences=s.preferences,
            guest_changes=s.guest_changes,
            revision=s.revision,
            updated_at=workflow.now(),
        )

    def _upsells(self) -> list[Upsell]:
        steps = {step.key: step for step in self._s.steps}
        upsells = []
        for offer in self._s.policy.upsell_offers:
            step = steps.get(upsell_key(offer.offer))
            status = UpsellStatus.planned
            if offer.offer in self._s.answers:
                status = UpsellStatus.accepted if self._s.answers[offer.offer] else UpsellStatus.declined
            elif step is not None and step.status in (StepStatus.done, StepStatus.in_doubt):
                status = UpsellStatus.offered
            elif offer.offer in self._s.staff_offers:
                status = UpsellStatus.offered
            elif step is not None and step.status in (StepStatus.skipped, StepStatus.cancelled, StepStatus.failed):
                status = UpsellStatus.skipped
            upsells.append(
                Upsell(
                    offer=offer.offer,
                    status=status,
                    price=offer.price,
                    currency=offer.currency,
                    offered_at=step.done_at if step is not None else None,
                    answered_at=self._s.answered_at.get(offer.offer),
                )
            )
        return upsells

    def _reject_if_finished(self) -> None:
        if self._s.stage.is_final:
            raise ApplicationError(
                f"journey is {self._s.stage.value}; it takes no more changes", type=JOURNEY_FINISHED
            )

    # -- queries ----------------------------------------------------------------

    @workflow.query
    def state(self) -> JourneyView:
        return self._view()

    # -- updates and signals ----------------------------------------------------

    @workflow.update
    def update_reservation(self, update: ReservationUpdate) -> JourneyAck:
        if update.request_id == self._s.created_request_id:
            return self._ack(created=True)
        if self._seen(update.request_id):
            return self._ack()
        if update.reservation == self._s.reservation and update.policy == self._s.policy:
            return self._ack()
        if _another_guest(self._s.reservation.guest, update.reservation.guest) and workflow.patched(GUEST_REPLACED):
            self._forget_the_earlier_guest()
        self._s.reservation = update.reservation
        self._s.policy = update.policy
        self._changed()
        return self._ack(changed=True)

    def _forget_the_earlier_guest(self) -> None:
        """Another guest took the reservation: what the earlier one gave on the guest pages
        (check-in details, form preferences, the feedback comment) is not theirs to see.
        Steps already sent stay done; nothing is sent again."""
        s = self._s
        cleared: list[str] = []
        form_keys = set(s.form_preferences)
        if not form_keys and s.checkin.status is CheckinStatus.completed:
            form_keys = set(CHECKIN_FORM_PREFERENCES)
        if s.checkin != Checkin():
            s.checkin, cleared = Checkin(), [*cleared, "checkin"]
        if form_keys & s.preferences.keys():
            s.preferences = {key: value for key, value in s.preferences.items() if key not in form_keys}
            cleared.append("preferences")
        s.form_preferences = []
        if s.feedback.comment is not None:
            s.feedback, cleared = s.feedback.model_copy(update={"comment": None}), [*cleared, "feedback_comment"]
        change = GuestChange(
            at=workflow.now(),
            reason="the reservation was given to another guest (name and e-mail or phone changed)",
            cleared=cleared,
        )
        s.guest_changes = [*s.guest_changes, change][-KEPT_GUEST_CHANGES:]

    @update_reservation.validator
    def _validate_reservation(self, update: ReservationUpdate) -> None:
        if update.request_id == self._s.created_request_id:
            return
        self._reject_if_finished()
        if update.reservation.reservation_id != self._s.reservation.reservation_id:
            raise ApplicationError("reservation_id does not match the journey", type=INVALID_REQUEST)
        if update.reservation.hotel_id != self._s.reservation.hotel_id:
            raise ApplicationError(
                f"hotel_id cannot change: reservation {self._s.reservation.reservation_id!r} is a journey of hotel "
                f"{self._s.reservation.hotel_id!r}; cancel it and send the reservation with the new hotel's "
                "own reservation id", type=HOTEL_CHANGED,
            )

    @workflow.update
    def cancel(self, request: CancelRequest) -> JourneyAck:
        if self._s.stage is Stage.cancelled or self._seen(request.request_id):
            return self._ack()
        self._s.stage = Stage.cancelled
        self._changed()
        return self._ack(changed=True)

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if self._s.stage in (Stage.completed, Stage.no_show):
            self._reject_if_finished()

    @workflow.update
    def record_event(self, event: PmsEvent) -> JourneyAck:
        if self._seen(event.request_id):
            return self._ack()
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
            return self._ack(detail=f"{event.type} ignored: stage is already {s.stage}")
        self._changed()
        return self._ack(changed=s.stage is not before or event.type is PmsEventType.checked_out)

    @record_event.validator
    def _validate_event(self, event: PmsEvent) -> None:
        self._reject_if_finished()
        if event.type is PmsEventType.no_show and self._s.checked_in_at is not None:
            raise ApplicationError("the guest checked in; a no-show is not possible", type=INVALID_REQUEST)

    @workflow.update
    def complete_checkin(self, submission: CheckinSubmission) -> JourneyAck:
        if self._seen(submission.request_id):
            return self._ack()
        self._s.checkin = Checkin(
            status=CheckinStatus.completed,
            completed_at=self._s.checkin.completed_at or workflow.now(),
            details=submission.details,
        )
        self._s.preferences = {**self._s.preferences, **submission.preferences}
        self._s.form_preferences = sorted({*self._s.form_preferences, *submission.preferences})
        self._changed()
        return self._ack(changed=True)

    @complete_checkin.validator
    def _validate_checkin(self, submission: CheckinSubmission) -> None:
        self._reject_if_finished()
        if self._s.stage is Stage.post_stay:
            raise ApplicationError("the stay is over; check-in is closed", type=JOURNEY_FINISHED)

    @workflow.update
    def answer_offer(self, answer: OfferAnswer) -> JourneyAck:
        if self._seen(answer.request_id) or answer.offer in self._s.answers:
            return self._ack(detail=f"offer {answer.offer} was already answered")
        self._s.answers[answer.offer] = answer.accepted
        self._s.answered_at[answer.offer] = workflow.now()
        self._changed()
        return self._ack(changed=True)

    @answer_offer.validator
    def _validate_answer(self, answer: OfferAnswer) -> None:
        """An answer counts only for an offer this guest was sent (`offered` in `_upsells`):
        not one still planned, skipped (no consent, unsubscribed) or never sent."""
        self._reject_if_finished()
        if self._s.policy.offer(answer.offer) is None:
            raise ApplicationError(f"unknown offer {answer.offer!r}", type=INVALID_REQUEST)
        if answer.request_id in self._s.applied_requests or answer.offer in self._s.answers:
            return  # a retry, or answered already: the update says so
        upsell = next(upsell for upsell in self._upsells() if upsell.offer == answer.offer)
        if upsell.status is not UpsellStatus.offered:
            raise ApplicationError(
                f"offer {answer.offer!r} is {upsell.status.value}, not offered to this guest", type=OFFER_NOT_OFFERED
            )

    @workflow.update
    def submit_feedback(self, submission: FeedbackSubmission) -> JourneyAck:
        if self._seen(submission.request_id) or self._s.feedback.status is FeedbackStatus.received:
            return self._ack(detail="feedback was already received")
        self._s.feedback = Feedback(
            status=FeedbackStatus.received,
            score=submission.score,
            comment=submission.comment,
            received_at=workflow.now(),
        )
        self._changed()
        return self._ack(changed=True)

    @submit_feedback.validator
    def _validate_feedback(self, submission: FeedbackSubmission) -> None:
        if self._s.stage in (Stage.cancelled, Stage.no_show):
            self._reject_if_finished()

    @workflow.update
    def send_message(self, message: ManualMessage) -> JourneyAck:
        key = f"{StepKind.manual.value}:{message.request_id}"
        channels = channels_for(self._s.reservation.guest, message.channel)
        first = message_id_for(message_key(self._s.reservation.reservation_id, key, channels[0]))
        if self._seen(message.request_id):
            return self._ack(message_id=first)
        self._s.manual_messages[key] = message
        self._s.steps = [
            *self._s.steps,
            Step(key=key, kind=StepKind.manual, status=StepStatus.planned, scheduled_for=workflow.now(),
                 template=message.template),
        ]
        self._changed()
        return self._ack(changed=True, message_id=first)

    @send_message.validator
    def _validate_message(self, message: ManualMessage) -> None:
        self._reject_if_finished()
        if not channels_for(self._s.reservation.guest, message.channel):
            raise ApplicationError("no channel reaches the guest", type=INVALID_REQUEST)
        offer = message.context.get("upsell_offer")
        if offer is not None and self._s.policy.offer(str(offer)) is None:
            raise ApplicationError(
                f"context.upsell_offer: the hotel has no offer {offer!r}", type=INVALID_REQUEST
            )

    @workflow.update
    def send_again(self, request: SendAgainRequest) -> JourneyAck:
        """Staff send a step in doubt again: once, on its channel, with the same message id."""
        step = next(step for step in self._s.steps if step.key == request.step_key)
        if self._seen(request.request_id):
            return self._ack(message_id=step.message_id)
        self._s.sends_again_due[step.key] = request.request_id
        self._changed()
        return self._ack(changed=True, message_id=step.message_id)

    @send_again.validator
    def _validate_send_again(self, request: SendAgainRequest) -> None:
        self._reject_if_finished()
        step = next((step for step in self._s.steps if step.key == request.step_key), None)
        if step is None:
            raise ApplicationError(f"the journey has no step {request.step_key!r}", type=INVALID_REQUEST)
        if request.request_id in self._s.applied_requests:
            return  # a retry of a request already taken: answered as it was
        if step.status is not StepStatus.in_doubt:
            raise ApplicationError(
                f"step {step.key!r} is {step.status.value}, not in doubt: only a message in doubt is sent again",
                type=INVALID_REQUEST,
            )
        if step.key in self._s.sends_again_due:
            raise ApplicationError(f"step {step.key!r} is already being sent again", type=INVALID_REQUEST)

    @workflow.update
    def apply_snapshot(self, snapshot: JourneySnapshot) -> JourneyAck:
        return self._apply_snapshot(snapshot)

    @apply_snapshot.validator
    def _validate_snapshot(self, snapshot: JourneySnapshot) -> None:
        self._reject_if_finished()
        if snapshot.stage is not None and not may_move(self._s.stage, snapshot.stage):
            raise ApplicationError(
                f"stage cannot go from {self._s.stage} to {snapshot.stage}", type=INVALID_REQUEST
            )

    @workflow.signal
    def apply_snapshot_async(self, snapshot: JourneySnapshot) -> None:
        if self._s.stage.is_final or (snapshot.stage and not may_move(self._s.stage, snapshot.stage)):
            return
        self._apply_snapshot(snapshot)

    def _apply_snapshot(self, snapshot: JourneySnapshot) -> JourneyAck:
        if self._seen(snapshot.request_id):
            return self._ack()
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
        return self._ack(changed=True)

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


def _another_guest(before: Guest, after: Guest) -> bool:
    """Another person, not a correction: the name changes and so does the e-mail or the phone.
    (A new spelling of the name, or a new address for the same name, is the same guest.)"""
    def name(guest: Guest) -> str:
        return " ".join(guest.name.casefold().split())

    def email(guest: Guest) -> str | None:
        return guest.email.casefold() if guest.email else None

    contact_changed = email(before) != email(after) or before.phone != after.phone
    return name(before) != name(after) and contact_changed


def _failure_type(error: ActivityError) -> str | None:
    return error.cause.type if isinstance(error.cause, ApplicationError) else None


def _cause(error: ActivityError) -> str:
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)
