"""What `guest-journey demo` leaves and says: every KPI window of the simulated weeks
measured, the dashboard's figures of those weeks, and the table that puts the KPIs
the seed implies beside them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from commands.demo_draws import DemoDraws, Tally
from commands.progress import duration
from guest_journey import read_model_queries
from guest_journey.policy import JourneyPolicy
from guest_journey.reservations import Channel
from services import dashboard
from services.kpi_store import record_dashboard_guest_experience
from services.kpi_tables import WindowKind
from services.kpi_windows import local_window, scopes_of


@dataclass(frozen=True)
class DemoFigures:
    """The dashboard's figures of one hotel (or all) over the simulated weeks, as `/analytics` reads them."""

    checkin_adoption: float | None
    checkin_completed: int
    checkin_arrived: int
    upsell_conversion: float | None
    upsell_offered: int
    upsell_accepted: int
    response_minutes: float | None
    nps: float | None
    responses: int
    satisfaction: float | None
    whatsapp_minutes: float | None = None  # the dashboard has one response time for every channel
    email_minutes: float | None = None


async def measure_windows(*, session: AsyncSession, policy: JourneyPolicy, since: datetime, now: datetime) -> int:
    """Measure and store every day and week window from `since` to `now`, of all hotels
    and of each, as the hourly KPI schedule stores them while the weeks pass; how many."""
    hotels = await read_model_queries.hotel_ids(session=session)
    count = 0
    for scope in scopes_of(policy, [*hotels, *policy.hotels]):
        for kind in WindowKind:
            window = local_window(kind, scope.zone, since.astimezone(scope.zone).date())
            while window.start <= now:
                await record_dashboard_guest_experience(
                    session=session, window_start=window.start, window_end=window.end, hotel_id=scope.hotel_id,
                    targets=scope.targets, now=now)
                count += 1
                window = local_window(kind, scope.zone, window.end.date())
    return count


async def dashboard_figures(
    *, session: AsyncSession, policy: JourneyPolicy, hotels: list[str], since: datetime, now: datetime,
) -> dict[str | None, DemoFigures]:
    """`/analytics` in weekly windows from the week of `since` to now: of all hotels (None) and each."""
    figures = {}
    for hotel in [None, *hotels]:
        hotel_policy = policy.for_hotel(hotel) if hotel else policy
        zone = hotel_policy.timezone
        period = dashboard.Period.choose(since=since.astimezone(zone).date(), until=None, kind=WindowKind.week,
                                         zone=zone, now=now)
        board = await dashboard.build_dashboard(session=session, hotel_id=hotel, period=period,
                                                targets=hotel_policy.kpi_targets, now=now)
        figures[hotel] = DemoFigures(
            checkin_adoption=board.checkin_adoption, checkin_completed=board.checkin_completed,
            checkin_arrived=board.checkin_arrived, upsell_conversion=board.upsell_conversion,
            upsell_offered=board.upsell_offered, upsell_accepted=board.upsell_accepted,
            response_minutes=board.response_minutes, nps=board.nps, responses=board.responses,
            satisfaction=board.satisfaction,
        )
    return figures


def truth(tally: Tally) -> DemoFigures:
    """The figures the draws imply, in the dashboard's terms."""
    return DemoFigures(
        checkin_adoption=tally.checkin_adoption, checkin_completed=tally.checked_in, checkin_arrived=tally.arrivals,
        upsell_conversion=tally.upsell_conversion, upsell_offered=tally.offers_sent,
        upsell_accepted=tally.offers_accepted, response_minutes=tally.response_minutes(), nps=tally.nps,
        responses=len(tally.scores), satisfaction=tally.satisfaction,
        whatsapp_minutes=tally.response_minutes(Channel.whatsapp), email_minutes=tally.response_minutes(Channel.email),
    )


ROWS: list[tuple[str, Callable[[DemoFigures], str]]] = [
    ("online check-in", lambda f: _percent(f.checkin_adoption, f.checkin_completed, f.checkin_arrived)),
    ("upsell conversion", lambda f: _percent(f.upsell_conversion, f.upsell_accepted, f.upsell_offered)),
    ("response time, WhatsApp", lambda f: _minutes(f.whatsapp_minutes)),
    ("response time, e-mail", lambda f: _minutes(f.email_minutes)),
    ("response time", lambda f: _minutes(f.response_minutes)),
    ("NPS (answers)", lambda f: f"{_number(f.nps, 1)} ({f.responses:,})"),
    ("satisfaction (0-10)", lambda f: _number(f.satisfaction, 2)),
]


def report(
    draws: DemoDraws, figures: dict[str | None, DemoFigures], *, seed: int, simulated: tuple[datetime, datetime],
    shift: timedelta, seconds: float, failed: int, api_url: str = "http://127.0.0.1:8000",
) -> str:
    """The KPIs the seed implies, of all hotels and of each, beside the dashboard's of all hotels;
    `api_url`: where `guest-journey dev` serves the pages."""
    columns: list[tuple[str, DemoFigures | None]] = [
        ("the seed's truth", truth(draws.total)), ("dashboard", figures.get(None)),
        *((hotel, truth(draws.by_hotel[hotel])) for hotel in draws.hotels),
    ]
    table = [["KPI", *(title for title, _ in columns)]]
    table += [[name, *("-" if figure is None else cell(figure) for _, figure in columns)] for name, cell in ROWS]
    widths = [max(len(row[index]) for row in table) for index in range(len(table[0]))]

    def line(cells: list[str]) -> str:
        return "".join(text.ljust(width + 2) for text, width in zip(cells, widths, strict=True)).rstrip()

    start, end = simulated
    lines = [
        f"guest-journey demo: {len(draws.hotels)} hotels, {len(draws.guests):,} guests, seed {seed}: "
        f"{(end - start) / timedelta(days=1):.0f} simulated days in {duration(seconds)}",
        f"simulated {start:%Y-%m-%d} to {end:%Y-%m-%d}, stored {shift.days} days earlier: "
        f"{start - shift:%Y-%m-%d} to {end - shift:%Y-%m-%d}",
    ]
    if failed:
        lines.append(f"{failed} guests or journeys failed: the dashboard may differ from the truth")
    lines += ["", *(line(row) for row in table)]
    since = (draws.first_day - shift).date().isoformat()
    lines += ["", "The dashboard has one response time for every channel. See it all: guest-journey dev, then",
              f"{api_url}/analytics?window=week&since={since} and the panel, {api_url}/"]
    return "\n".join(lines) + "\n"


def _percent(value: float | None, part: int, whole: int) -> str:
    return "-" if value is None else f"{value * 100:.1f} % ({part:,}/{whole:,})"


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} min"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
