"""`record_dashboard_guest_experience` over a known set of journeys and messages,
on SQLite and on PostgreSQL: figures, recomputation, alerts and their webhook."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.journeys import (
    Checkin,
    CheckinStatus,
    Feedback,
    FeedbackStatus,
    JourneyView,
    Stage,
    Upsell,
    UpsellStatus,
    workflow_id_for,
)
from guest_journey.read_model import save_journey
from guest_journey.reservations import Guest
from guest_journey.telemetry import KPI_ALERTS
from services.automation import telemetry_check
from services.kpi_alerts import list_alerts
from services.kpi_snapshots import list_snapshots
from services.kpi_store import record_dashboard_guest_experience, telemetry_status
from services.kpi_tables import KpiAlert, KpiSnapshot, WindowKind, window_kind_of
from tests.communications import database_fixtures
from tests.communications.staff_replies import add_in_order

db_sessions = database_fixtures.db_sessions

T0 = datetime(2025, 3, 10, tzinfo=UTC)
DAY = timedelta(days=1)
SP, RJ = "hotel-sp", "hotel-rj"
NOW = T0 + timedelta(hours=22)


def at(hours: float, day: int = 0) -> datetime:
    return T0 + day * DAY + timedelta(hours=hours)


def journey(
    reservation_id: str,
    *,
    hotel_id: str = SP,
    arrival: datetime,
    nights: int = 2,
    stage: Stage = Stage.in_stay,
    checked_in: bool = False,
    score: int | None = None,
    satisfaction: int | None = None,
    scored_at: datetime | None = None,
    upsells: list[Upsell] | None = None,
) -> JourneyView:
    feedback = Feedback()
    if score is not None:
        feedback = Feedback(status=FeedbackStatus.received, score=score, satisfaction=satisfaction,
                            received_at=scored_at)
    return JourneyView(
        reservation_id=reservation_id,
        workflow_id=workflow_id_for(reservation_id),
        hotel_id=hotel_id,
        stage=stage,
        guest=Guest(name="Ana Souza", email="ana@example.com"),
        arrival=arrival,
        departure=arrival + nights * DAY,
        upsells=upsells or [],
        checkin=Checkin(status=CheckinStatus.completed if checked_in else CheckinStatus.pending),
        feedback=feedback,
        revision=1,
    )


def offer(name: str, status: UpsellStatus, offered_at: datetime | None = None,
          answered_at: datetime | None = None) -> Upsell:
    return Upsell(offer=name, status=status, offered_at=offered_at, answered_at=answered_at)


# Day 0 of hotel SP: satisfaction answers 9, 7, 8 (satisfaction 8.0), recommendation
# scores 10, 6, 8 (NPS 0); four offers sent,
# two accepted; J1 and J2 arrived (J1 checked in), J6 arrives after NOW, J4 is
# cancelled; the RJ journey and next day's feedback stay out.
JOURNEYS = [
    journey("J1", arrival=at(10), checked_in=True, score=10, satisfaction=9, scored_at=at(20), upsells=[
        offer("room_upgrade", UpsellStatus.accepted, at(2), at(2.5)),
        offer("late_checkout", UpsellStatus.offered, at(3)),
    ]),
    journey("J2", arrival=at(12), score=6, satisfaction=7, scored_at=at(21.5), upsells=[
        offer("room_upgrade", UpsellStatus.declined, at(4), at(5)),
        offer("late_checkout", UpsellStatus.planned),
    ]),
    journey("J3", arrival=at(1) - 3 * DAY, nights=3, stage=Stage.post_stay, score=8, satisfaction=8, scored_at=at(6), upsells=[
        offer("room_upgrade", UpsellStatus.accepted, None, at(7)),
        offer("late_checkout", UpsellStatus.skipped),
    ]),
    journey("J4", arrival=at(15), stage=Stage.cancelled, checked_in=True),
    journey("J5", hotel_id=RJ, arrival=at(11), score=0, satisfaction=0, scored_at=at(8), upsells=[
        offer("room_upgrade", UpsellStatus.accepted, at(2), at(3)),
    ]),
    journey("J6", arrival=at(23), stage=Stage.pre_arrival),
    journey("J7", arrival=at(0) - 5 * DAY, stage=Stage.completed, score=2, satisfaction=2, scored_at=at(2, day=1)),
]

# id, hotel, direction, status, created_at, in_reply_to
MESSAGES = [
    ("m1", SP, "outbound", "sent", at(1), None),
    ("m2", SP, "outbound", "failed", at(2), None),
    ("m3", SP, "outbound", "delivered", at(3), None),
    ("i1", SP, "inbound", "received", at(9), None),
    ("m4", SP, "outbound", "read", at(9.2), "i1"),  # a staff reply after 12 minutes
    ("m5", RJ, "outbound", "failed", at(4), None),
    ("m6", SP, "outbound", "failed", at(1, day=1), None),
]


async def load(sessions: SessionFactory) -> None:
    async with sessions() as session:
        for view in JOURNEYS:
            await save_journey(session=session, view=view)
        await add_in_order(session, [
            MessageRecord(id=mid, hotel_id=hotel, direction=direction, channel="email", status=status,
                          created_at=created_at, in_reply_to=reply_to,
                          # the guest's message and the staff reply: one conversation, a staff (manual) step
                          reservation_id="J1" if mid in ("i1", "m4") else None,
                          step_key="manual:m4" if mid == "m4" else None)
            for mid, hotel, direction, status, created_at, reply_to in MESSAGES
        ])


@pytest.fixture(autouse=True)
def fresh_telemetry() -> Iterator[None]:
    telemetry_status.succeeded()
    yield
    telemetry_status.succeeded()


async def record(sessions: SessionFactory, day: int = 0, **kwargs: Any) -> KpiSnapshot:
    async with sessions() as session:
        return await record_dashboard_guest_experience(
            session=session, window_start=T0 + day * DAY, window_end=T0 + (day + 1) * DAY,
            now=kwargs.pop("now", NOW), **kwargs,
        )


async def alerts_of(sessions: SessionFactory, hotel_id: str | None) -> dict[tuple[str, str], KpiAlert]:
    async with sessions() as session:
        rows = await session.exec(select(KpiAlert).where(
            col(KpiAlert.hotel_id).is_(None) if hotel_id is None else KpiAlert.hotel_id == hotel_id))
        return {(alert.kpi, alert.kind): alert for alert in rows.all()}


async def test_a_day_of_one_hotel(db_sessions):
    await load(db_sessions)
    snapshot = await record(db_sessions, hotel_id=SP)

    assert snapshot.id is not None and snapshot.window_kind == "day"
    assert (snapshot.hotel_id, snapshot.window_start, snapshot.window_end) == (SP, T0, T0 + DAY)
    assert snapshot.feedback_responses == 3
    assert snapshot.satisfaction_avg == pytest.approx(8.0)
    assert snapshot.nps == pytest.approx(0.0)
    assert (snapshot.upsell_offered, snapshot.upsell_accepted) == (4, 2)
    assert snapshot.upsell_conversion == pytest.approx(0.5)
    assert snapshot.checkin_adoption == pytest.approx(0.5)
    assert snapshot.journeys == 4
    assert snapshot.messages_sent == 4
    assert snapshot.failure_rate == pytest.approx(0.25)
    assert snapshot.avg_response_time_minutes == pytest.approx(12.0, abs=0.01)


async def test_all_hotels_together(db_sessions):
    await load(db_sessions)
    snapshot = await record(db_sessions)

    assert snapshot.hotel_id is None
    assert snapshot.feedback_responses == 4
    assert snapshot.satisfaction_avg == pytest.approx(6.0)
    assert snapshot.nps == pytest.approx(-25.0)
    assert (snapshot.upsell_offered, snapshot.upsell_accepted) == (5, 3)
    assert snapshot.upsell_conversion == pytest.approx(0.6)
    assert snapshot.failure_rate == pytest.approx(0.4)


async def test_an_empty_window_measures_nothing_and_alerts_nothing(db_sessions):
    snapshot = await record(db_sessions, day=40, hotel_id=SP)

    assert snapshot.satisfaction_avg is None and snapshot.nps is None
    assert snapshot.upsell_conversion is None and snapshot.failure_rate is None
    assert snapshot.avg_response_time_minutes is None and snapshot.checkin_adoption is None
    assert (snapshot.journeys, snapshot.messages_sent, snapshot.upsell_offered) == (0, 0, 0)
    assert await alerts_of(db_sessions, SP) == {}


async def test_thresholds_of_the_runbook_raise_alerts_that_are_logged(db_sessions, caplog):
    await load(db_sessions)
    alerts_before = KPI_ALERTS.labels(kpi="failure_rate", kind="threshold", hotel=SP)._value.get()
    with caplog.at_level(logging.WARNING, logger="services.kpi_alerts"):
        await record(db_sessions, hotel_id=SP)
        await record(db_sessions)

    sp = await alerts_of(db_sessions, SP)
    assert set(sp) == {("failure_rate", "threshold"), ("avg_response_time_minutes", "threshold")}
    failure = sp[("failure_rate", "threshold")]
    assert (failure.value, failure.target, failure.window_end) == (pytest.approx(0.25), 0.05, T0 + DAY)
    assert "failure_rate is 0.25, above the maximum 0.05" in failure.message
    every = await alerts_of(db_sessions, None)
    assert ("failure_rate", "threshold") in every and ("upsell_conversion", "threshold") not in every
    logged = [r for r in caplog.records if r.getMessage().startswith("guest experience KPI alert")]
    assert len(logged) == len(sp) + len(every)
    assert {getattr(r, "kpi", None) for r in logged} >= {"failure_rate", "avg_response_time_minutes"}
    exported = KPI_ALERTS.labels(kpi="failure_rate", kind="threshold", hotel=SP)._value.get()
    assert exported == alerts_before + 1  # exported as a metric too


async def test_recomputing_a_window_replaces_its_snapshot_and_keeps_its_alerts(db_sessions, caplog):
    await load(db_sessions)
    first = await record(db_sessions, hotel_id=SP)
    alerts = await alerts_of(db_sessions, SP)
    async with db_sessions() as session:
        await save_journey(session=session, view=journey("J8", arrival=at(13), score=1, satisfaction=1,
                                                            scored_at=at(14)))
        session.add(MessageRecord(id="m9", hotel_id=SP, direction="outbound", channel="email",
                                  status="sent", created_at=at(13)))
        await session.commit()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="services.kpi_alerts"):
        again = await record(db_sessions, hotel_id=SP)

    assert again.id == first.id
    assert again.feedback_responses == 4 and again.satisfaction_responses == 4
    assert again.satisfaction_avg == pytest.approx(6.25)  # (9 + 7 + 8 + 1) / 4
    assert again.failure_rate == pytest.approx(0.2)
    async with db_sessions() as session:
        stored = (await session.exec(select(KpiSnapshot).where(KpiSnapshot.hotel_id == SP))).all()
    assert len(stored) == 1 and stored[0].satisfaction_avg == pytest.approx(6.25)
    kept = await alerts_of(db_sessions, SP)
    assert set(kept) == set(alerts)
    assert kept[("failure_rate", "threshold")].value == pytest.approx(0.2)
    assert kept[("failure_rate", "threshold")].created_at == alerts[("failure_rate", "threshold")].created_at
    assert not [r for r in caplog.records if r.getMessage().startswith("guest experience KPI alert")]


async def test_an_alert_that_no_longer_holds_is_removed_on_recompute(db_sessions):
    await load(db_sessions)
    await record(db_sessions, hotel_id=SP)
    async with db_sessions() as session:
        session.add_all(
            MessageRecord(id=f"ok{n}", hotel_id=SP, direction="outbound", channel="email", status="sent",
                          created_at=at(5)) for n in range(30)
        )
        await session.commit()
    snapshot = await record(db_sessions, hotel_id=SP)

    assert snapshot.failure_rate == pytest.approx(1 / 34, abs=1e-4)
    assert set(await alerts_of(db_sessions, SP)) == {("avg_response_time_minutes", "threshold")}


async def scored_days(sessions: SessionFactory, hotel_id: str, scores: list[int], first_day: int) -> None:
    """One feedback per day, `scores[0]` on `first_day`, from journeys of `hotel_id`."""
    async with sessions() as session:
        for offset, score in enumerate(scores):
            day = first_day + offset
            await save_journey(session=session, view=journey(
                f"{hotel_id}-{day}", hotel_id=hotel_id, arrival=at(1, day=day - 2), stage=Stage.post_stay,
                score=score, satisfaction=score, scored_at=at(12, day=day)))


async def test_three_falling_windows_in_a_row_raise_a_trend_alert(db_sessions):
    await scored_days(db_sessions, "hotel-fall", [9, 8, 7, 6], first_day=-3)
    for day in (-3, -2, -1):
        await record(db_sessions, day=day, hotel_id="hotel-fall")
    assert await alerts_of(db_sessions, "hotel-fall") == {}

    await record(db_sessions, day=0, hotel_id="hotel-fall")

    alerts = await alerts_of(db_sessions, "hotel-fall")
    assert set(alerts) == {("satisfaction_avg", "trend")}
    trend = alerts[("satisfaction_avg", "trend")]
    assert trend.value == 6.0 and trend.target == 4.5 and trend.window_end == T0 + DAY
    assert "9 -> 8 -> 7 -> 6" in trend.message


@pytest.mark.parametrize("scores", [[9, 7, 8, 6], [9, 8, 8, 7], [6, 7, 8, 9]])
async def test_noise_and_flat_windows_are_not_a_trend(db_sessions, scores):
    await scored_days(db_sessions, "hotel-noise", scores, first_day=-3)
    for day in (-3, -2, -1, 0):
        await record(db_sessions, day=day, hotel_id="hotel-noise")
    assert await alerts_of(db_sessions, "hotel-noise") == {}


async def test_a_missing_window_breaks_the_trend(db_sessions):
    await scored_days(db_sessions, "hotel-gap", [10, 9, 8, 7, 6], first_day=-4)
    for day in (-4, -2, -1, 0):  # day -3 was never recorded
        await record(db_sessions, day=day, hotel_id="hotel-gap")
    assert await alerts_of(db_sessions, "hotel-gap") == {}


async def test_snapshots_and_alerts_are_listed_for_the_dashboard(db_sessions):
    await scored_days(db_sessions, "hotel-fall", [9, 8, 7, 6], first_day=-3)
    for day in (-3, -2, -1, 0):
        await record(db_sessions, day=day, hotel_id="hotel-fall")
    async with db_sessions() as session:
        snapshots = await list_snapshots(session=session, window_kind=WindowKind.day, hotel_id="hotel-fall")
        alerts = await list_alerts(session=session, hotel_id="hotel-fall")
    assert [s.satisfaction_avg for s in snapshots] == [6.0, 7.0, 8.0, 9.0]
    assert [(a.kpi, a.kind) for a in alerts] == [("satisfaction_avg", "trend")]


def test_a_window_is_one_day_or_one_week_with_offsets():
    assert window_kind_of(T0, T0 + DAY) == "day"
    assert window_kind_of(T0, T0 + 7 * DAY) == "week"
    with pytest.raises(ValueError, match="one day or one week"):
        window_kind_of(T0, T0 + 2 * DAY)
    with pytest.raises(ValueError, match="offset"):
        window_kind_of(datetime(2025, 3, 10), datetime(2025, 3, 11))


async def test_a_week_window_is_stored_beside_the_days(db_sessions):
    await load(db_sessions)
    async with db_sessions() as session:
        week = await record_dashboard_guest_experience(
            session=session, window_start=T0 - 6 * DAY, window_end=T0 + DAY, hotel_id=SP, now=NOW)
    day = await record(db_sessions, hotel_id=SP)
    assert week.window_kind == "week" and day.window_kind == "day" and week.id != day.id
    assert week.feedback_responses == 3


# -- the webhook ------------------------------------------------------------------------


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that keeps the JSON bodies POSTed to it."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.bodies: list[Any] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/alerts"

    async def __aenter__(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if lines[0].startswith("POST /alerts ") and headers.get("content-type") == "application/json":
            self.bodies.append(json.loads(body))
        writer.write(f"HTTP/1.1 {self.status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


async def test_alerts_are_posted_to_the_webhook_once(db_sessions):
    await load(db_sessions)
    async with WebhookReceiver() as receiver:
        await record(db_sessions, hotel_id=SP, webhook_url=receiver.url)
        await record(db_sessions, hotel_id=SP, webhook_url=receiver.url)

    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["hotel_id"] == SP and body["window_kind"] == "day"
    assert datetime.fromisoformat(body["window_end"]) == T0 + DAY
    posted = {(alert["kpi"], alert["kind"]): alert for alert in body["alerts"]}
    assert set(posted) == {("failure_rate", "threshold"), ("avg_response_time_minutes", "threshold")}
    assert posted[("failure_rate", "threshold")]["value"] == pytest.approx(0.25)
    assert posted[("failure_rate", "threshold")]["target"] == 0.05
    assert all(alert.notified_at is not None for alert in (await alerts_of(db_sessions, SP)).values())
    assert await telemetry_check() == "ok"


async def test_a_failing_webhook_degrades_telemetry_and_is_retried_on_the_next_run(db_sessions):
    await load(db_sessions)
    async with WebhookReceiver(status=500) as failing:
        snapshot = await record(db_sessions, hotel_id=SP, webhook_url=failing.url)
    assert snapshot.failure_rate == pytest.approx(0.25)
    assert await telemetry_check() == "KPI alert webhook answered 500"
    assert all(alert.notified_at is None for alert in (await alerts_of(db_sessions, SP)).values())

    async with WebhookReceiver() as receiver:
        await record(db_sessions, hotel_id=SP, webhook_url=receiver.url)
    assert len(receiver.bodies) == 1 and len(receiver.bodies[0]["alerts"]) == 2
    assert await telemetry_check() == "ok"


async def test_a_failed_computation_degrades_telemetry(settings):
    engine = create_engine(settings.resolved_database_url)  # never upgraded: no tables
    try:
        async with session_factory(engine)() as session:
            with pytest.raises(DBAPIError) as failed:
                await record_dashboard_guest_experience(session=session, window_start=T0, window_end=T0 + DAY)
    finally:
        await engine.dispose()
    assert "no such table" in str(failed.value) or "does not exist" in str(failed.value)
    assert await telemetry_check() == f"KPI computation failed: {type(failed.value).__name__}"


async def test_a_bad_window_is_refused_without_degrading_telemetry(db_sessions):
    async with db_sessions() as session:
        with pytest.raises(ValueError, match="one day or one week"):
            await record_dashboard_guest_experience(session=session, window_start=T0, window_end=T0 + 2 * DAY)
    assert await telemetry_check() == "ok"


async def test_satisfaction_counts_the_satisfaction_answers_and_nps_the_recommendation_ones(db_sessions):
    """A recommendation score alone (an NPS pushed by a snapshot, or an answer given before
    the form asked about satisfaction) counts in the NPS and never as satisfaction."""
    async with db_sessions() as session:
        for rid, score, satisfaction in (("S1", 10, 6), ("S2", 9, None), ("S3", 0, 4)):
            await save_journey(session=session, view=journey(rid, hotel_id="hotel-two", arrival=at(1), score=score,
                                                             satisfaction=satisfaction, scored_at=at(5)))
        await session.commit()
    snapshot = await record(db_sessions, hotel_id="hotel-two")
    assert (snapshot.feedback_responses, snapshot.nps) == (3, pytest.approx(100 / 3, abs=1e-3))
    assert (snapshot.satisfaction_responses, snapshot.satisfaction_avg) == (2, pytest.approx(5.0))


async def test_the_apis_telemetry_check_reads_the_schedules_work_from_the_database(db_sessions):
    """The API computes no KPIs: its check says when the stored snapshots go stale (the
    hourly schedule stopped) and when alerts wait for the webhook."""
    await load(db_sessions)
    await record(db_sessions, hotel_id=SP)  # measured as of NOW, with two threshold alerts
    async with db_sessions() as session:
        fresh = await telemetry_check(session=session, now=NOW + timedelta(hours=1))
        stale = await telemetry_check(session=session, now=NOW + timedelta(hours=3))
        no_webhook = await telemetry_check(session=session, now=NOW + timedelta(minutes=30))
    assert fresh == "ok" and no_webhook == "ok"
    assert stale == "KPI snapshots last measured 2025-03-10 22:00 UTC: the hourly KPI schedule is not running"

    async with db_sessions() as session:  # the two alerts, refused by the webhook for two hours
        for alert in (await session.exec(select(KpiAlert))).all():
            alert.created_at = NOW - timedelta(hours=2)
            session.add(alert)
        await session.commit()
        waiting = await telemetry_check(session=session, webhook_url="http://127.0.0.1:9/alerts",
                                        now=NOW + timedelta(minutes=30))
        unset = await telemetry_check(session=session, now=NOW + timedelta(minutes=30))
    assert waiting == "2 KPI alerts not taken by the webhook for over an hour"
    assert unset == "ok"  # without a webhook nothing waits for one
