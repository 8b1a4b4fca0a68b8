"""What `guest-journey demo` simulates, drawn from its seed before it runs: the hotels,
the reservations, each guest's acts with their moments, and the KPIs they imply.

Everything comes from one `random.Random(seed)`, so a seed gives the same guests, the
same acts and the same figures on every run (`start`, the simulation's first moment,
only moves them in time: the moments are built from its next local midnight). The
rates are published figures for hotel guests, rounded:

- online check-in: each hotel's rate drawn between 15 % and 20 % of its guests;
- an offer sent is accepted by 6 % of guests and declined by 10 %; the rest let it be;
- a third of the guests write to the hotel once, on WhatsApp when they gave a phone
  (60 %) else by e-mail; staff answer after a delay drawn around 12 min on WhatsApp
  and 26 min by e-mail (a gamma distribution of that mean, at least one minute);
- 40 % answer the post-stay feedback form: 55 % promoters (9-10), 30 % passives (7-8),
  15 % detractors (0-6), and a satisfaction within a point of their recommendation.

Which offers a journey sends, and when it sends the check-in invitation and the
feedback request, is the journey's own planner (`workflows.plan.plan_steps`) at
the booking moment: a guest answers only what the journey will have sent them.
The truth (`DemoTruth`) counts what the draws say will happen and computes the KPIs
with the dashboard's own formulas (`guest_journey.kpis`).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from guest_journey import kpis
from guest_journey.journeys import StepKind, StepStatus
from guest_journey.policy import JourneyPolicy
from guest_journey.reservations import Channel, Guest, Reservation
from workflows.demo_guest import DemoGuestInput, GuestAct, GuestActKind
from workflows.plan import JourneyFacts, plan_steps

HOTEL_NAMES = ["demo-copacabana", "demo-ipanema", "demo-leblon", "demo-botafogo", "demo-urca"]
ID_PREFIX = "DEMO"
FIRST_ARRIVAL_AFTER = timedelta(days=5)  # past the longest check-in reminder, so every step is planned
LEAD_TIME = (timedelta(days=4), timedelta(days=30))
ARRIVAL_TIME, DEPARTURE_TIME = time(15, 0), time(12, 0)
NIGHTS = [1, 2, 2, 3, 3, 3, 4, 5, 7]
CHECKIN_RATE = (0.15, 0.20)
OFFER_ACCEPTED, OFFER_DECLINED = 0.06, 0.10
WRITES = 0.33
WHATSAPP_SHARE = 0.60
HAS_PHONE = 0.75
REPLY_MINUTES = {Channel.whatsapp: 12.0, Channel.email: 26.0}
FEEDBACK_RATE = 0.40
NPS_MIX = [(range(9, 11), 0.55), (range(7, 9), 0.30), (range(0, 7), 0.15)]
MARKETING_CONSENT = 0.85
LANGUAGES = ["pt-BR", "pt-BR", "en", "es"]
FIRST_NAMES = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Felipe", "Gabriela", "Hugo", "Isabel", "João",
               "Laura", "Marcos", "Nina", "Otávio", "Paula", "Rafael", "Sofia", "Tiago", "Valéria", "William"]
LAST_NAMES = ["Souza", "Silva", "Costa", "Pereira", "Almeida", "García", "Smith", "Oliveira", "Lima", "Rocha"]


@dataclass
class Tally:
    """What the draws say will happen, in counts, for one hotel or for all."""

    arrivals: int = 0
    checked_in: int = 0
    offers_sent: int = 0
    offers_accepted: int = 0
    reply_minutes: dict[Channel, list[float]] = field(default_factory=lambda: {c: [] for c in REPLY_MINUTES})
    scores: list[int] = field(default_factory=list)
    satisfactions: list[int] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.arrivals += other.arrivals
        self.checked_in += other.checked_in
        self.offers_sent += other.offers_sent
        self.offers_accepted += other.offers_accepted
        for channel, minutes in other.reply_minutes.items():
            self.reply_minutes[channel].extend(minutes)
        self.scores.extend(other.scores)
        self.satisfactions.extend(other.satisfactions)

    @property
    def checkin_adoption(self) -> float | None:
        return kpis.checkin_adoption(completed=self.checked_in, past_arrival=self.arrivals)

    @property
    def upsell_conversion(self) -> float | None:
        return kpis.upsell_conversion(offered=self.offers_sent, accepted=self.offers_accepted)

    def response_minutes(self, channel: Channel | None = None) -> float | None:
        channels = [channel] if channel else list(self.reply_minutes)
        minutes = [value for each in channels for value in self.reply_minutes[each]]
        return round(sum(minutes) / len(minutes), 2) if minutes else None

    @property
    def replies(self) -> int:
        return sum(len(minutes) for minutes in self.reply_minutes.values())

    @property
    def nps(self) -> float | None:
        return kpis.nps(self.scores)

    @property
    def satisfaction(self) -> float | None:
        return kpis.average_score(self.satisfactions)


@dataclass
class DemoDraws:
    """The simulation: a guest (their reservation and acts) per reservation, and the truth."""

    hotels: list[str]
    guests: list[DemoGuestInput]
    by_hotel: dict[str, Tally]
    first_day: datetime
    last_moment: datetime

    @property
    def total(self) -> Tally:
        total = Tally()
        for tally in self.by_hotel.values():
            total.add(tally)
        return total


def hotel_ids(count: int) -> list[str]:
    return [HOTEL_NAMES[index] if index < len(HOTEL_NAMES) else f"demo-hotel-{index + 1}" for index in range(count)]


def draw(*, hotels: int, guests: int, weeks: int, seed: int, start: datetime, policy: JourneyPolicy) -> DemoDraws:
    """`guests` reservations spread over `hotels`, arriving over `weeks` weeks from about
    five days after `start` (module rules)."""
    rng = random.Random(seed)
    names = hotel_ids(hotels)
    zone = policy.timezone
    day0 = datetime.combine(start.astimezone(zone).date() + timedelta(days=1), time(0), tzinfo=zone)
    rates = {hotel: rng.uniform(*CHECKIN_RATE) for hotel in names}
    by_hotel = {hotel: Tally() for hotel in names}
    drawn: list[DemoGuestInput] = []
    last = day0
    for number in range(guests):
        hotel = names[number % hotels]
        reservation, booked_at = _reservation(rng, number, hotel, weeks, day0, policy.for_hotel(hotel).timezone,
                                              seed)
        acts, tally, ends = _acts(rng, reservation, booked_at, policy, rates[hotel])
        by_hotel[hotel].add(tally)
        drawn.append(DemoGuestInput(reservation=reservation, acts=acts))
        last = max(last, ends)
    return DemoDraws(hotels=names, guests=drawn, by_hotel=by_hotel, first_day=day0, last_moment=last)


def _reservation(
    rng: random.Random, number: int, hotel: str, weeks: int, day0: datetime, zone: ZoneInfo, seed: int,
) -> tuple[Reservation, datetime]:
    arrival_day = day0.date() + FIRST_ARRIVAL_AFTER + timedelta(days=rng.randrange(weeks * 7))
    nights = rng.choice(NIGHTS)
    arrival = datetime.combine(arrival_day, ARRIVAL_TIME, tzinfo=zone)
    departure = datetime.combine(arrival_day + timedelta(days=nights), DEPARTURE_TIME, tzinfo=zone)
    earliest = max(day0, arrival - LEAD_TIME[1])
    latest = arrival - LEAD_TIME[0]
    booked_at = earliest + (latest - earliest) * rng.random()
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    phone = f"+55219{rng.randrange(10**8):08d}" if rng.random() < HAS_PHONE else None
    guest = Guest(
        name=f"{first} {last}",
        email=f"{_ascii(first).lower()}.{number + 1}@example.com",
        phone=phone,
        language=rng.choice(LANGUAGES),
        marketing_consent=rng.random() < MARKETING_CONSENT,
    )
    reservation = Reservation(
        reservation_id=f"{ID_PREFIX}{seed}-{number + 1:05d}", hotel_id=hotel, guest=guest,
        arrival=arrival, departure=departure, room_type=rng.choice(["standard", "deluxe", "suite"]),
    )
    return reservation, booked_at


def _acts(
    rng: random.Random, reservation: Reservation, booked_at: datetime, policy: JourneyPolicy, checkin_rate: float,
) -> tuple[list[GuestAct], Tally, datetime]:
    """The guest's acts, what they add to the truth, and when the journey closes."""
    hotel_policy = policy.for_hotel(reservation.hotel_id)
    steps = plan_steps(reservation, hotel_policy, JourneyFacts(), booked_at)
    planned = {step.key: step for step in steps if step.status is StepStatus.planned and step.scheduled_for}
    tally = Tally(arrivals=1)
    acts = [GuestAct(kind=GuestActKind.book, at=booked_at)]
    arrival, departure = reservation.arrival, reservation.departure

    invitation = planned.get(StepKind.checkin_invitation.value)
    if invitation is not None and rng.random() < checkin_rate:
        assert invitation.scheduled_for is not None
        at = _between(rng, invitation.scheduled_for + timedelta(minutes=30), arrival - timedelta(hours=1))
        acts.append(GuestAct(kind=GuestActKind.check_in, at=at))
        tally.checked_in += 1

    for step in planned.values():
        if step.kind is not StepKind.upsell or step.offer is None:
            continue
        assert step.scheduled_for is not None
        tally.offers_sent += 1
        answer = rng.random()
        if answer >= OFFER_ACCEPTED + OFFER_DECLINED:
            continue
        accepted = answer < OFFER_ACCEPTED
        tally.offers_accepted += accepted
        at = step.scheduled_for + timedelta(minutes=rng.uniform(10, 180))
        acts.append(GuestAct(kind=GuestActKind.answer_offer, at=at, offer=step.offer, accepted=accepted))

    if rng.random() < WRITES:
        whatsapp = reservation.guest.phone is not None and rng.random() < WHATSAPP_SHARE
        channel = Channel.whatsapp if whatsapp else Channel.email
        at = _between(rng, booked_at + timedelta(hours=1), departure - timedelta(hours=2))
        minutes = max(1.0, round(rng.gammavariate(2.0, REPLY_MINUTES[channel] / 2.0), 2))
        acts.append(GuestAct(kind=GuestActKind.write, at=at, channel=channel))
        acts.append(GuestAct(kind=GuestActKind.staff_reply, at=at + timedelta(minutes=minutes), channel=channel))
        tally.reply_minutes[channel].append(minutes)

    feedback = planned.get(StepKind.guest_post_stay_feedback.value)
    if feedback is not None and rng.random() < FEEDBACK_RATE:
        assert feedback.scheduled_for is not None
        score = _score(rng)
        satisfaction = min(10, max(0, score + rng.choice([-1, 0, 0, 1])))
        at = feedback.scheduled_for + timedelta(minutes=rng.uniform(20, 30 * 60))
        acts.append(GuestAct(kind=GuestActKind.give_feedback, at=at, score=score, satisfaction=satisfaction))
        tally.scores.append(score)
        tally.satisfactions.append(satisfaction)

    return sorted(acts, key=lambda act: act.at), tally, departure + hotel_policy.close_after_departure


def _score(rng: random.Random) -> int:
    pick, share = rng.random(), 0.0
    for scores, weight in NPS_MIX:
        share += weight
        if pick < share:
            return rng.choice(scores)
    return rng.choice(NPS_MIX[-1][0])


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _between(rng: random.Random, first: datetime, last: datetime) -> datetime:
    if last <= first:
        return first
    return first + (last - first) * rng.random()
