"""A guest's personal data on request: `guest-journey gdpr export|erase`, on SQLite
and PostgreSQL, and the erasure of a journey that is still running."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.messaging import UNSUBSCRIBED, MessagingActivities
from api.guest.checkin_form import CheckinForm, blank_values, submission
from api.i18n import Translator
from commands.gdpr import JourneyNotEnded, end_journey
from communications.channels.email import outbox_path
from communications.delivery_summary import delivery_summary
from communications.inbound import store_inbound
from communications.message_status import apply_status_update
from communications.message_store import MessageRecord, get_or_create_outbound, save_message
from communications.staff_texts import store_staff_text
from communications.templates import TemplateCatalogue
from communications.unsubscribes import Unsubscribe, is_unsubscribed, unsubscribe
from guest_journey.database import SessionFactory
from guest_journey.gdpr_audit import GdprAudit, audit_trail
from guest_journey.guest_links import GuestLinks
from guest_journey.journey_keys import JourneyKeyErased, JourneyKeys
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
    Upsell,
    UpsellStatus,
    workflow_id_for,
)
from guest_journey.messages import MessageStatus, SendMessageInput, message_id_for, message_key
from guest_journey.read_model import get_journey, save_journey
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from services.gdpr import UnknownReservation, erase_guest_data, export_guest_data
from services.snapshot_pending import SnapshotPending
from tests.communications import database_fixtures
from tests.every_table import every_table
from tests.factories import make_reservation
from tests.recording_sender import RecordingSender
from tests.workflows.journeys import booking, end, put, quiet_policy, recorded
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import JourneyInput

db_sessions = database_fixtures.db_sessions

T0 = datetime(2025, 3, 18, 12, 0, tzinfo=UTC)
HOTEL = "hotel-sp"
SECRET_KEY = "the-service-secret-key"
CLI_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Person:
    """A guest and everything personal the journey stores of them."""

    reservation_id: str
    name: str
    email: str
    phone: str
    document_number: str
    document_masked: str
    birth_date: str
    address_line: str
    postal_code: str
    signature: str
    notes: str
    comment: str
    subject: str
    body: str
    reply: str
    chat: str
    unmatched: str
    staff_text: str

    @property
    def personal(self) -> list[str]:
        """What must not be left anywhere once the guest is erased."""
        return [
            self.name, self.email, self.phone, self.phone.lstrip("+"), self.document_masked, self.birth_date,
            self.address_line, self.postal_code, self.signature, self.notes, self.comment, self.subject,
            self.body, self.reply, self.chat, self.unmatched, self.staff_text,
        ]


ANA = Person(
    reservation_id="R-ANA", name="Ana Souza", email="ana.souza@example.com", phone="+5511999990000",
    document_number="AB1234567", document_masked="*****4567", birth_date="1988-04-12",
    address_line="Rua das Flores 123", postal_code="13010-000", signature="Ana S. Souza",
    notes="Arriving with a baby cot", comment="Loved the rooftop pool", subject="Ana, your online check-in",
    body="Hello Ana Souza, check in online before you arrive.", reply="Yes, arriving around three",
    chat="Can I bring my little dog Pipoca?", unmatched="Hi, this is Ana from my other phone",
    staff_text="Pipoca is welcome; a dog bed will be in room 1204",
)
BRUNO = Person(
    reservation_id="R-BRUNO", name="Bruno Lima", email="bruno.lima@example.org", phone="+5521988887777",
    document_number="XY7654321", document_masked="*****4321", birth_date="1979-11-02",
    address_line="Avenida Atlantica 900", postal_code="22021-001", signature="Bruno Lima",
    notes="Late arrival by car", comment="Breakfast could start earlier", subject="Bruno, your online check-in",
    body="Hello Bruno Lima, check in online before you arrive.", reply="I will arrive at midnight",
    chat="Is there parking for a van?", unmatched="Bruno here, any news about my parking?",
    staff_text="Your van fits in bay 7 of the garage",
)
STRANGER_MESSAGE = "Do you have rooms for the carnival?"


# -- seeding: each store's own write functions ------------------------------------------------


def checkin_submission(person: Person, arrival: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the check-in form sends to the journey for this guest (details, preferences)."""
    values = blank_values()
    values.update(
        eta="15:00", document_type="passport", document_number=person.document_number, nationality="BR",
        date_of_birth=person.birth_date, address_line=person.address_line, city="Campinas",
        postal_code=person.postal_code, country="BR", signature=person.signature, notes=person.notes,
        dietary=["vegetarian"], accessibility=["step_free"], terms=True,
    )
    return submission(
        CheckinForm(values=values), Translator("en", "America/Sao_Paulo"),
        arrival=arrival, now=T0, document_on_file=None,
    )


def send_input(person: Person, step_key: str, channel: Channel) -> SendMessageInput:
    reservation = make_reservation(reservation_id=person.reservation_id, name=person.name,
                                   email=person.email, phone=person.phone)
    key = message_key(person.reservation_id, step_key, channel)
    return SendMessageInput(
        message_id=message_id_for(key), message_key=key, reservation_id=person.reservation_id,
        hotel_id=HOTEL, step_key=step_key, template="checkin_invitation", channel=channel,
        guest=reservation.guest,
    )


async def seed_journey(sessions: SessionFactory, person: Person, stage: Stage) -> None:
    reservation = make_reservation(reservation_id=person.reservation_id, hotel_id=HOTEL, name=person.name,
                                   email=person.email, phone=person.phone, marketing_consent=True)
    details, preferences = checkin_submission(person, reservation.arrival)
    bounce = f"every channel failed: email: 550 5.1.1 <{person.email}>: mailbox unavailable"
    view = JourneyView(
        reservation_id=person.reservation_id, workflow_id=workflow_id_for(person.reservation_id), hotel_id=HOTEL,
        stage=stage, guest=reservation.guest, arrival=reservation.arrival, departure=reservation.departure,
        steps=[
            Step(key="checkin_invitation", kind=StepKind.checkin_invitation, status=StepStatus.done, done_at=T0),
            Step(key="checkin_reminder:PT24H", kind=StepKind.checkin_reminder, status=StepStatus.failed,
                 reason=bounce),
        ],
        upsells=[Upsell(offer="room_upgrade", status=UpsellStatus.accepted, price="120.00", currency="BRL")],
        checkin=Checkin(status=CheckinStatus.completed, completed_at=T0, details=details),
        feedback=Feedback(status=FeedbackStatus.received, score=9, comment=person.comment, received_at=T0),
        preferences=preferences,
        revision=7,
    )
    async with sessions() as session:
        await save_journey(session=session, view=view)


async def seed_messages(sessions: SessionFactory, person: Person) -> None:
    """An e-mail invitation (rendered, handed over, then bounced), the guest's reply,
    a web chat message, and a WhatsApp message from the guest that matched no reservation."""
    async with sessions() as session:
        invitation = await get_or_create_outbound(
            session=session, message=send_input(person, "checkin_invitation", Channel.email)
        )
        invitation.subject = person.subject
        invitation.body_text = person.body
        invitation.body_html = f"<p>{person.body}</p>"
        invitation.status = MessageStatus.sent.value
        invitation.provider_message_id = f"<{uuid.uuid4()}@hotel.example>"
        invitation.created_at = invitation.sent_at = T0
        await save_message(session=session, record=invitation)
        await apply_status_update(
            session=session, message_id=invitation.id, status=MessageStatus.failed,
            at=T0 + timedelta(minutes=1), reason=f"550 5.1.1 <{person.email}>: mailbox unavailable",
        )
        await store_inbound(session=session, channel=Channel.email, sender=f"{person.name} <{person.email}>",
                            body=person.reply, received_at=T0 + timedelta(minutes=5), in_reply_to=invitation.id)
        await store_inbound(session=session, channel=Channel.webchat, sender=f"webchat:{person.reservation_id}",
                            body=person.chat, received_at=T0 + timedelta(minutes=6),
                            reservation_id=person.reservation_id)
        await store_inbound(session=session, channel=Channel.whatsapp, sender=person.phone.lstrip("+"),
                            body=person.unmatched, received_at=T0 + timedelta(minutes=7))
        await store_staff_text(session=session, reservation_id=person.reservation_id, request_id="answer-1",
                               body=person.staff_text)
        await unsubscribe(session=session, address=person.email, reservation_id=person.reservation_id)
        session.add(SnapshotPending(reservation_id=person.reservation_id, request_id=f"snapshot-{uuid.uuid4()}"))
        await session.commit()


async def seed(sessions: SessionFactory) -> None:
    """Ana's finished stay, Bruno's stay under way, and a stranger's unmatched message."""
    await seed_journey(sessions, ANA, Stage.completed)
    await seed_journey(sessions, BRUNO, Stage.in_stay)
    await seed_messages(sessions, ANA)
    await seed_messages(sessions, BRUNO)
    async with sessions() as session:
        await store_inbound(session=session, channel=Channel.whatsapp, sender="+5531977776666",
                            body=STRANGER_MESSAGE, received_at=T0)


async def database_dump(sessions: SessionFactory) -> str:
    """Every row of every table, as text."""
    lines = []
    async with sessions() as session:
        connection = await session.connection()
        for table in every_table().sorted_tables:
            rows = (await connection.execute(table.select())).all()
            lines += [f"{table.name}: {tuple(row)}" for row in rows]
    return "\n".join(lines)


def found(dump: str, person: Person) -> list[str]:
    return [value for value in person.personal if value.lower() in dump.lower()]


# -- export and erase on both databases -----------------------------------------------------------


async def test_the_export_holds_the_guests_data_from_every_table_and_nothing_of_another(db_sessions):
    await seed(db_sessions)

    export = await export_guest_data(db_sessions, ANA.reservation_id, actor="dpo@hotel.example", reason="ticket 42")

    tables = export["tables"]
    text_of = json.dumps(export, ensure_ascii=False)
    assert found(text_of, ANA) == ANA.personal
    assert found(text_of, BRUNO) == []
    assert STRANGER_MESSAGE not in text_of
    assert [row["reservation_id"] for row in tables["journey"]] == [ANA.reservation_id]
    assert {row["body_text"] for row in tables["message"]} == {ANA.body, ANA.reply, ANA.chat, ANA.unmatched}
    assert [row["reason"] for row in tables["message_status_event"]] == [
        f"550 5.1.1 <{ANA.email}>: mailbox unavailable"
    ]
    assert [row["body"] for row in tables["staff_text"]] == [ANA.staff_text]
    assert [row["address"] for row in tables["unsubscribe"]] == [ANA.email]
    assert len(tables["snapshot_pending"]) == 1
    async with db_sessions() as session:
        [audit] = await audit_trail(session=session, reservation_id=ANA.reservation_id)
    assert (audit.action, audit.actor, audit.reason) == ("export", "dpo@hotel.example", "ticket 42")
    assert json.loads(audit.details) == {
        "journey": 1, "message": 4, "message_status_event": 1, "staff_text": 1, "unsubscribe": 1,
        "snapshot_pending": 1, "inbound_email": 0,
    }
    assert found(audit.details, ANA) == []


async def test_erasing_removes_the_guests_data_everywhere_and_keeps_the_figures(db_sessions):
    await seed(db_sessions)
    async with db_sessions() as session:
        summary_before = await delivery_summary(session=session, hotel_id=HOTEL)
        messages_before = sorted((await session.exec(select(MessageRecord.id, MessageRecord.status))).all())
    bruno_before = json.dumps((await export_guest_data(db_sessions, BRUNO.reservation_id, actor="test"))["tables"])
    ana_key = await JourneyKeys(db_sessions).for_encoding(workflow_id_for(ANA.reservation_id))
    bruno_key = await JourneyKeys(db_sessions).for_encoding(workflow_id_for(BRUNO.reservation_id))

    counts = await erase_guest_data(
        db_sessions, ANA.reservation_id, secret_key=SECRET_KEY, actor="dpo@hotel.example", reason="ticket 43"
    )

    assert counts == {
        "journey": 1, "message": 4, "message_status_event": 1, "staff_text": 1, "unsubscribe": 1, "snapshot_pending": 0,
        "inbound_email": 0, "outbox_file": 0, "journey_data_key": 1,
    }
    with pytest.raises(JourneyKeyErased, match=workflow_id_for(ANA.reservation_id)):
        await JourneyKeys(db_sessions).for_decoding(ana_key.key_id)
    assert (await JourneyKeys(db_sessions).for_decoding(bruno_key.key_id)).workflow_id == bruno_key.workflow_id
    dump = await database_dump(db_sessions)
    assert found(dump, ANA) == []
    assert found(dump, BRUNO) == BRUNO.personal
    assert STRANGER_MESSAGE in dump
    bruno_after = json.dumps((await export_guest_data(db_sessions, BRUNO.reservation_id, actor="test"))["tables"])
    assert bruno_after == bruno_before
    async with db_sessions() as session:
        assert await delivery_summary(session=session, hotel_id=HOTEL) == summary_before
        assert sorted((await session.exec(select(MessageRecord.id, MessageRecord.status))).all()) == messages_before
        view = await get_journey(session=session, reservation_id=ANA.reservation_id)
        assert await is_unsubscribed(session=session, address=ANA.email, secret_key=SECRET_KEY)
        trail = await audit_trail(session=session, reservation_id=ANA.reservation_id)
    assert view is not None
    assert (view.guest.name, view.guest.email, view.guest.phone) == ("erased", None, None)
    assert (view.feedback.score, view.feedback.comment) == (9, "[erased]")
    assert view.checkin.status is CheckinStatus.completed
    assert "document_number" not in view.checkin.details and "address" not in view.checkin.details
    assert [upsell.status for upsell in view.upsells] == [UpsellStatus.accepted]
    assert set(view.preferences.values()) == {None}
    export = await export_guest_data(db_sessions, ANA.reservation_id, actor="test")
    assert {row["body_text"] for row in export["tables"]["message"]} == {"[erased]"}
    assert export["tables"]["staff_text"] == []
    assert [(entry.action, entry.actor, entry.reason) for entry in trail] == [("erase", "dpo@hotel.example", "ticket 43")]
    assert json.loads(trail[0].details) == counts


async def test_erasing_deletes_the_guests_e_mails_from_the_local_outbox(db_sessions, tmp_path):
    """Without SMTP, e-mails wait in the outbox as files whose links still work."""
    await seed(db_sessions)
    async with db_sessions() as session:
        ids = sorted((await session.exec(select(MessageRecord.id).where(
            MessageRecord.reservation_id.in_([ANA.reservation_id, BRUNO.reservation_id])))).all())
        anas = set((await session.exec(select(MessageRecord.id).where(
            MessageRecord.reservation_id == ANA.reservation_id))).all())
    for message_id in ids:
        outbox_path(tmp_path, message_id).write_text("Subject: your link\n")

    counts = await erase_guest_data(
        db_sessions, ANA.reservation_id, secret_key=SECRET_KEY, actor="dpo", outbox_dir=tmp_path
    )

    left = {message_id for message_id in ids if outbox_path(tmp_path, message_id).exists()}
    assert counts["outbox_file"] == len(anas) and left == set(ids) - anas


async def test_erasing_twice_changes_nothing_the_second_time(db_sessions):
    await seed(db_sessions)
    await erase_guest_data(db_sessions, ANA.reservation_id, secret_key=SECRET_KEY, actor="dpo")
    dump = await database_dump(db_sessions)

    counts = await erase_guest_data(db_sessions, ANA.reservation_id, secret_key=SECRET_KEY, actor="dpo")

    assert set(counts.values()) == {0}
    dump_again = await database_dump(db_sessions)
    without_audit = [line for line in dump_again.splitlines() if not line.startswith("gdpr_audit")]
    assert without_audit == [line for line in dump.splitlines() if not line.startswith("gdpr_audit")]
    async with db_sessions() as session:
        trail = await audit_trail(session=session, reservation_id=ANA.reservation_id)
    assert [entry.action for entry in trail] == ["erase", "erase"]


def offer_to(person: Person, reservation_id: str) -> SendMessageInput:
    """The room-upgrade offer of a reservation of this guest, by e-mail, as the journey sends it."""
    reservation = make_reservation(reservation_id=reservation_id, hotel_id=HOTEL, name=person.name,
                                   email=person.email, phone=person.phone, marketing_consent=True)
    key = message_key(reservation_id, "upsell:room_upgrade", Channel.email)
    return SendMessageInput(
        message_id=message_id_for(key), message_key=key, reservation_id=reservation_id, hotel_id=HOTEL,
        step_key="upsell:room_upgrade", template="upsell_offer", channel=Channel.email, guest=reservation.guest,
        marketing=True,
        context={"arrival": reservation.arrival.isoformat(), "departure": reservation.departure.isoformat(),
                 "journey_stage": "pre_arrival", "step_key": "upsell:room_upgrade", "upsell_offer": "room_upgrade",
                 "hotel_timezone": "America/Sao_Paulo"},
    )


async def send_offer(sessions: SessionFactory, email: RecordingSender, offer: SendMessageInput) -> str:
    """Send the offer through the messaging activity; answers "sent" or the failure type."""
    messaging = MessagingActivities(
        sessions=sessions, templates=TemplateCatalogue.load(), channels={Channel.email: email},
        links=GuestLinks("https://stay.example.com", SECRET_KEY), secret_key=SECRET_KEY,
    )
    try:
        return (await ActivityEnvironment().run(messaging.send_message, offer)).status
    except ApplicationError as error:
        return str(error.type)


async def test_an_erased_guest_who_books_again_still_gets_no_offers(db_sessions):
    await seed(db_sessions)  # Ana unsubscribed from offers during her stay
    carla = replace(ANA, reservation_id="R-CARLA", name="Carla Dias", email="carla.dias@example.com",
                    phone="+5511988880000")
    email = RecordingSender(Channel.email)

    await erase_guest_data(db_sessions, ANA.reservation_id, secret_key=SECRET_KEY, actor="dpo")

    export = json.dumps(await export_guest_data(db_sessions, ANA.reservation_id, actor="dpo"))
    assert found(export, ANA) == []
    assert found(await database_dump(db_sessions), ANA) == []
    [kept] = json.loads(export)["tables"]["unsubscribe"]
    assert kept["address"].startswith("sha256:")
    assert await send_offer(db_sessions, email, offer_to(ANA, "R-ANA-AGAIN")) == UNSUBSCRIBED
    assert await send_offer(db_sessions, email, offer_to(carla, "R-CARLA")) == "sent"
    assert [outgoing.recipient for outgoing in email.sent] == [carla.email]


async def test_a_guest_who_unsubscribes_again_and_is_erased_again_keeps_one_opt_out(db_sessions):
    await seed(db_sessions)
    again = replace(ANA, reservation_id="R-ANA-AGAIN")
    await erase_guest_data(db_sessions, ANA.reservation_id, secret_key=SECRET_KEY, actor="dpo")
    await seed_journey(db_sessions, again, Stage.completed)
    async with db_sessions() as session:  # from an offer of the new stay, sent before the first erasure
        await unsubscribe(session=session, address=again.email, reservation_id=again.reservation_id)

    counts = await erase_guest_data(db_sessions, again.reservation_id, secret_key=SECRET_KEY, actor="dpo")

    assert counts["unsubscribe"] == 1
    assert found(await database_dump(db_sessions), ANA) == []
    async with db_sessions() as session:
        addresses = sorted((await session.exec(select(Unsubscribe.address))).all())
        assert await is_unsubscribed(session=session, address=ANA.email, secret_key=SECRET_KEY)
    assert len(addresses) == 2 and addresses[0] == BRUNO.email and addresses[1].startswith("sha256:")


async def test_an_unknown_reservation_is_refused_and_leaves_no_audit_row(db_sessions):
    await seed(db_sessions)

    with pytest.raises(UnknownReservation, match="R-NOBODY"):
        await export_guest_data(db_sessions, "R-NOBODY", actor="dpo")
    with pytest.raises(UnknownReservation, match="R-NOBODY"):
        await erase_guest_data(db_sessions, "R-NOBODY", secret_key=SECRET_KEY, actor="dpo")

    async with db_sessions() as session:
        assert (await session.exec(select(GdprAudit))).all() == []


# -- the command ---------------------------------------------------------------------------------


@dataclass
class CliResult:
    status: int
    stdout: str
    stderr: str


async def gdpr_cli(
    settings: Settings, *args: str, temporal_address: str = "127.0.0.1:1", extra_env: dict[str, str] | None = None
) -> CliResult:
    """`guest-journey gdpr …` in a process of its own, on the test's data dir."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("GUEST_JOURNEY_", "OTEL_"))}
    environment.update(
        GUEST_JOURNEY_DATA_DIR=str(settings.data_dir),
        GUEST_JOURNEY_DATABASE_URL=settings.resolved_database_url,
        GUEST_JOURNEY_TEMPORAL_ADDRESS=temporal_address,
        GUEST_JOURNEY_PAYLOAD_ENCRYPTION=str(settings.payload_encryption).lower(),
        **(extra_env or {}),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "commands.cli", "gdpr", *args, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_SECONDS)
    assert process.returncode is not None
    return CliResult(process.returncode, stdout.decode(), stderr.decode())


async def test_export_prints_json_or_writes_a_private_file(sessions, settings, tmp_path):
    await seed(sessions)

    printed = await gdpr_cli(settings, "export", ANA.reservation_id, "--actor", "dpo@hotel.example")
    target = tmp_path / "ana.json"
    written = await gdpr_cli(settings, "export", ANA.reservation_id, "--output", str(target))
    unwritable = await gdpr_cli(settings, "export", ANA.reservation_id, "--output", str(tmp_path / "no" / "x.json"))

    assert printed.status == 0, printed.stderr
    assert json.loads(printed.stdout)["tables"]["journey"][0]["view"]["guest"]["email"] == ANA.email
    assert written.status == 0, written.stderr
    assert str(target) in written.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text())["reservation_id"] == ANA.reservation_id
    assert unwritable.status == 1
    assert f"cannot write {tmp_path / 'no' / 'x.json'}: No such file or directory" in unwritable.stderr
    async with sessions() as session:
        trail = await audit_trail(session=session, reservation_id=ANA.reservation_id)
    assert [(entry.action, entry.actor) for entry in trail][0] == ("export", "dpo@hotel.example")
    assert len(trail) == 2


async def test_an_unknown_reservation_exits_with_1_and_says_so(sessions, settings, tmp_path):
    await seed(sessions)
    target = tmp_path / "nobody.json"

    export = await gdpr_cli(settings, "export", "R-NOBODY", "--output", str(target))
    erase = await gdpr_cli(settings, "erase", "R-NOBODY")

    for result in (export, erase):
        assert result.status == 1
        assert "no data stored for reservation 'R-NOBODY'" in result.stderr
        assert result.stdout == ""
    assert not target.exists()


async def test_without_temporal_a_running_journey_is_erased_only_with_force(sessions, settings):
    await seed(sessions)  # Bruno's stay is under way in the read model

    refused = await gdpr_cli(settings, "erase", BRUNO.reservation_id)

    assert refused.status == 1
    assert "Temporal at 127.0.0.1:1 is unreachable" in refused.stderr
    assert "still in_stay" in refused.stderr and "--force" in refused.stderr
    assert found(await database_dump(sessions), BRUNO) == BRUNO.personal

    forced = await gdpr_cli(settings, "erase", BRUNO.reservation_id, "--force")

    assert forced.status == 0, forced.stderr
    assert "--force" in forced.stdout and "erased the personal data of reservation 'R-BRUNO'" in forced.stdout
    assert found(await database_dump(sessions), BRUNO) == []


async def test_without_temporal_a_finished_journey_is_erased(sessions, settings):
    await seed(sessions)  # Ana's stay has finished

    result = await gdpr_cli(settings, "erase", ANA.reservation_id, "--reason", "guest's request")

    assert result.status == 0, result.stderr
    assert "retention" in result.stdout
    assert found(await database_dump(sessions), ANA) == []


async def test_erasing_a_running_journey_cancels_it_first(
    env: WorkflowEnvironment, worker: Callable[..., Any], sessions: SessionFactory, settings: Settings
):
    now = await env.get_current_time()
    reservation = booking(now, arrive_in=timedelta(days=10), name=ANA.name, email=ANA.email, phone=ANA.phone)
    rid = reservation.reservation_id
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        try:
            await recorded(sessions, rid)

            result = await gdpr_cli(settings, "erase", rid,
                                    temporal_address=env.client.service_client.config.target_host)

            assert result.status == 0, result.stderr
            assert f"cancelled the running journey of reservation {rid!r}" in result.stdout
            assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
            async with sessions() as session:
                view = await get_journey(session=session, reservation_id=rid)
                stored = (await session.exec(select(MessageRecord).where(col(MessageRecord.reservation_id) == rid)))
                assert all(message.recipient is None for message in stored.all())
            assert view is not None
            assert view.stage is Stage.cancelled
            assert (view.guest.name, view.guest.email, view.guest.phone) == ("erased", None, None)
        finally:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await end(env, rid)


async def test_a_journey_that_no_worker_ends_stops_the_erasure(
    env: WorkflowEnvironment, worker: Callable[..., Any], sessions: SessionFactory, settings: Settings
):
    now = await env.get_current_time()
    reservation = booking(now, arrive_in=timedelta(days=10), name=ANA.name, email=ANA.email)
    handle = await env.client.start_workflow(  # no worker polls its task queue yet
        GuestJourneyWorkflow.run,
        JourneyInput(reservation=reservation, policy=quiet_policy(), request_id=str(uuid.uuid4())),
        id=workflow_id_for(reservation.reservation_id), task_queue=settings.task_queue,
    )
    try:
        with pytest.raises(JourneyNotEnded, match=r"did not end within 2 s \(is a worker running\?\)"):
            await end_journey(env.client, sessions, reservation.reservation_id, timeout=2)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        async with worker():
            await end(env, reservation.reservation_id)
