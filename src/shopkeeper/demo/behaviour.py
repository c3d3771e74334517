"""The behaviour model: when each person visits, what a visit contains, who buys and who churns.

Purchases follow the BG/NBD story the CLV model will assume: each customer buys at their own
Poisson rate (gamma-distributed across customers, so many buy once and a few buy often) and may
drop out after each purchase (beta-distributed chance); basket sizes differ per customer, which
gives the Gamma-Gamma spend model something to find. Visits that end without an order come on
top, and anonymous visitors browse without ever signing in.

The output is a plan: `Session`s that fix how many events of each kind a visit holds, so the
event count is known exactly before any payload is built. `plan_shop` scales the browsing so the
page and track events add up to exactly the requested number.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from shopkeeper.demo.catalogue import CATEGORIES
from shopkeeper.demo.people import Person, Visitor, seeded

WINDOW_DAYS = 365
MAX_GAP = timedelta(seconds=120)  # the longest pause between two events of one visit
MIN_BREAK = timedelta(minutes=20)  # between two visits of the same person

# Population mix.
VISITOR_SHARE = 0.2  # anonymous-only visitors per named customer
NEW_SHARE = 0.55  # customers who signed up inside the window (the rest are older customers)
ALIVE_AT_START = 0.8  # older customers who had not churned before the window began
BROWSE_BEFORE_SIGNUP = 0.5  # new customers who browsed anonymously before signing up
FIRST_ORDER_AT_SIGNUP = 0.4  # sign-ups that buy in the same visit
SECOND_DEVICE_SHARE = 0.25  # customers who sometimes use their other browser
NEWSLETTER_SHARE = 0.35
REFUND_SHARE = 0.05
# BG/NBD: purchase rate λ ~ Gamma(r, 1/α) per year, dropout p ~ Beta(a, b).
RATE_SHAPE, RATE_SCALE = 0.3, 3.0
DROPOUT_A, DROPOUT_B = 0.8, 2.4
VISITS_PER_ORDER = 1.0  # median browsing visits per order; browsing scales with buying
BASE_VISITS = 0.5  # browsing visits a year even for customers who rarely buy
TIERS = ((10, "platinum"), (5, "gold"), (2, "silver"), (0, "bronze"))

# Local hour of day at which visits start: lunch and evening peaks.
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 11, 10, 8, 8, 8, 9, 11, 13, 14, 12, 7, 3)


@dataclass(frozen=True, slots=True)
class Window:
    """The twelve months the demo covers: [start, end), end being midnight UTC of `--until`."""

    start: datetime
    end: datetime

    @classmethod
    def ending(cls, until: date) -> Window:
        end = datetime.combine(until, time(0), UTC)
        return cls(end - timedelta(days=WINDOW_DAYS), end)


@dataclass(slots=True)
class Shopper:
    """A named customer's hidden traits: how often they buy, whether they churn, what they like."""

    person: Person
    signed_up_at: datetime
    new: bool  # signed up inside the window
    purchase_rate: float  # orders per year while active (λ)
    dropout: float  # chance of churning after an order (p)
    browse_rate: float  # visits per year without an order, at browse scale 1
    basket: float  # mean distinct products per order
    prior_orders: int  # orders before the window, for the loyalty tier
    affinity: tuple[float, ...]  # weight per catalogue category
    switch_share: float  # share of visits on the second device
    newsletter: bool
    active_until: datetime  # when they stopped visiting (churned) or the window's end


@dataclass(slots=True)
class Session:
    """One visit (or one server-side event) and exactly what it will contain."""

    actor: int  # index into people, then visitors (len(people) + n)
    serial: int  # the actor's n-th planned session; names it in seeds and message ids
    start: datetime
    kind: str  # signup | purchase | browse | refund | sync
    device: int = 0
    anonymous: bool = False  # nobody is signed in: before sign-up, or an anonymous visitor
    pages: int = 1  # plain page views, the landing page included
    products: int = 0  # product pages, each with a Product Viewed
    search: bool = False
    adds: int = 0
    cart: bool = False
    checkout: bool = False
    order: bool = False
    newsletter: bool = False
    refund_of: int | None = None  # serial of the refunded session
    login_hint: int = 0  # events before signing in, if this visit signs in
    login_after: int | None = None  # set by `finalise`: sign in (identify) after this many events
    tier: str = "bronze"  # loyalty tier at the start
    new_tier: str | None = None  # tier reached by this visit's order: an identify follows it

    @property
    def web(self) -> bool:
        return self.kind not in ("refund", "sync")

    @property
    def tracked(self) -> int:
        """Page and track events in this session (what `--events` counts)."""
        if self.kind == "refund":
            return 1
        if self.kind == "sync":
            return 0
        return (
            self.pages
            + 2 * (self.kind == "signup")
            + 2 * self.search
            + 2 * self.products
            + self.adds
            + 2 * self.cart
            + 2 * self.checkout
            + 2 * self.order
            + self.newsletter
        )

    @property
    def identifies(self) -> int:
        return (self.kind in ("signup", "sync")) + (self.login_after is not None) + (self.new_tier is not None)

    @property
    def span(self) -> timedelta:
        """An upper bound on how long the session lasts (every gap is at most MAX_GAP)."""
        return MAX_GAP * (self.tracked + self.identifies)


@dataclass(slots=True)
class Plan:
    window: Window
    shoppers: list[Shopper]
    visitors: list[Visitor]
    sessions: list[Session] = field(default_factory=list)  # sorted by start
    browse_scale: float = 0.0  # browsing relative to the model's natural rate, to meet `--events`

    @property
    def tracked(self) -> int:
        return sum(s.tracked for s in self.sessions)

    @property
    def identifies(self) -> int:
        return sum(s.identifies for s in self.sessions)


def tier_for(orders: int) -> str:
    return next(name for threshold, name in TIERS if orders >= threshold)


def geometric(rng: random.Random, mean: float) -> int:
    """Failures before the first success, with the given mean (0 when mean is 0)."""
    if mean <= 0:
        return 0
    return int(math.log(1.0 - rng.random()) / math.log(mean / (1.0 + mean)))


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth for small means, a rounded normal beyond (only browsing at a huge scale gets there)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


@lru_cache(maxsize=128)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_start(rng: random.Random, window: Window, day: int, timezone: str) -> datetime:
    """A UTC start on the `day`-th calendar day of the window, at an hour people shop at there."""
    day = min(max(day, 1), WINDOW_DAYS - 2)  # a whole local day inside the window, in any zone
    zone = _zone(timezone)
    hour = rng.choices(range(24), weights=_HOUR_WEIGHTS)[0]
    local_day = window.start.date() + timedelta(days=day)
    return datetime.combine(local_day, time(hour, rng.randrange(60), rng.randrange(60)), zone).astimezone(UTC)


def _day_of(window: Window, when: datetime, timezone: str) -> int:
    """The calendar day of the window that `when` falls on where the person lives."""
    return (when.astimezone(_zone(timezone)).date() - window.start.date()).days


def draw_shopper(seed: int, index: int, person: Person, window: Window) -> Shopper:
    rng = seeded(seed, "shopper", index)
    new = rng.random() < NEW_SHARE
    if new:
        # Sign-ups grow over the year, as a young shop's do.
        day = 1 + int((WINDOW_DAYS - 3) * rng.random() ** 0.8)
        signed_up_at = local_start(rng, window, day, person.timezone)
    else:
        signed_up_at = window.start - timedelta(days=rng.uniform(30, 4 * 365), seconds=rng.randrange(86400))
    rate = rng.gammavariate(RATE_SHAPE, RATE_SCALE)
    years_before = 0.0 if new else (window.start - signed_up_at).days / 365
    alive = new or rng.random() < ALIVE_AT_START
    affinity = tuple(rng.gammavariate(0.6, 1.0) + 0.02 for _ in CATEGORIES)
    return Shopper(
        person=person,
        signed_up_at=signed_up_at,
        new=new,
        purchase_rate=rate if alive else 0.0,
        dropout=rng.betavariate(DROPOUT_A, DROPOUT_B),
        browse_rate=(BASE_VISITS + VISITS_PER_ORDER * rate * rng.lognormvariate(0, 0.5)) if alive else 0.3,
        basket=1.0 + rng.gammavariate(1.5, 0.5),
        prior_orders=poisson(rng, min(rate, 12.0) * years_before * 0.6),
        affinity=affinity,
        switch_share=rng.uniform(0.2, 0.5) if rng.random() < SECOND_DEVICE_SHARE else 0.0,
        newsletter=rng.random() < NEWSLETTER_SHARE,
        active_until=window.end,
    )


def _browse_shape(rng: random.Random, session: Session, engagement: float = 1.0) -> None:
    session.pages = 1 + geometric(rng, 1.2 * engagement)
    session.products = min(geometric(rng, 1.6 * engagement), 12)
    session.search = rng.random() < 0.25
    if session.products and rng.random() < 0.2:
        session.adds = 1 if rng.random() < 0.8 else min(2, session.products)
        session.cart = rng.random() < 0.6
        session.checkout = session.cart and rng.random() < 0.3  # checkouts abandoned too


def _purchase_shape(rng: random.Random, session: Session, basket: float) -> None:
    items = 1 + poisson(rng, basket - 1.0)
    session.pages = 1 + geometric(rng, 0.5)
    session.products = items + geometric(rng, 0.5)
    session.search = rng.random() < 0.2
    session.adds = items
    session.cart = rng.random() < 0.6  # the rest go straight from the mini-cart to checkout
    session.checkout = session.order = True


def _login_hint(rng: random.Random) -> int:
    """Half of sign-ins happen on the landing page, the rest after a look around."""
    return 0 if rng.random() < 0.5 else rng.randint(1, 3)


def core_sessions(seed: int, index: int, shopper: Shopper, window: Window) -> list[Session]:
    """Sign-up, the anonymous visits before it, orders and refunds: everything but plain browsing."""
    rng = seeded(seed, "core", index)
    tz = shopper.person.timezone
    sessions: list[Session] = []

    def add(kind: str, start: datetime, *, device: int = 0, anonymous: bool = False) -> Session:
        session = Session(index, len(sessions), start, kind, device=device, anonymous=anonymous)
        session.login_hint = _login_hint(rng)
        sessions.append(session)
        return session

    orders: list[Session] = []
    active_from = window.start
    signup_day = 0
    if shopper.new:
        active_from = shopper.signed_up_at
        signup_day = _day_of(window, shopper.signed_up_at, tz)
        if rng.random() < BROWSE_BEFORE_SIGNUP and signup_day > 2:
            for back in sorted(rng.sample(range(1, 22), rng.randint(1, 3)), reverse=True):
                if signup_day - back >= 1:
                    visit = add("browse", local_start(rng, window, signup_day - back, tz), anonymous=True)
                    _browse_shape(rng, visit)
        signup = add("signup", shopper.signed_up_at)
        if rng.random() < FIRST_ORDER_AT_SIGNUP:
            _purchase_shape(rng, signup, shopper.basket)
            orders.append(signup)
        else:
            _browse_shape(rng, signup, 0.7)
        signup.newsletter = shopper.newsletter

    alive = not (orders and rng.random() < shopper.dropout)
    when = active_from
    last_order = active_from
    while alive and shopper.purchase_rate > 0:
        gap_days = 365 * rng.expovariate(shopper.purchase_rate)
        if gap_days >= (window.end - when).days - 2:
            break
        when += timedelta(days=gap_days)
        # Later orders start the day after sign-up at the earliest: never before the account exists.
        day = max(_day_of(window, when, tz), signup_day + 1)
        visit = add("purchase", local_start(rng, window, day, tz), device=int(rng.random() < shopper.switch_share))
        _purchase_shape(rng, visit, shopper.basket)
        orders.append(visit)
        last_order = when
        alive = rng.random() >= shopper.dropout
    if not alive:
        # Churned customers drift away over a few weeks instead of vanishing the day they buy.
        shopper.active_until = min(window.end, last_order + timedelta(days=rng.expovariate(1 / 30)))
    elif shopper.purchase_rate == 0 and not shopper.new:
        shopper.active_until = window.start + timedelta(days=rng.uniform(0, WINDOW_DAYS))

    for order in orders:
        if rng.random() < REFUND_SHARE:
            refund_day = _day_of(window, order.start, tz) + rng.randint(3, 21)
            if refund_day < WINDOW_DAYS - 2:
                refund = add("refund", local_start(rng, window, refund_day, tz))
                refund.refund_of, refund.pages = order.serial, 0
    return sessions


def browse_sessions(
    seed: int, index: int, shopper: Shopper, window: Window, scale: float, first_serial: int
) -> list[Session]:
    """Visits that end without an order, at `scale` times the shopper's natural browse rate."""
    rng = seeded(seed, "browse", index)
    start = shopper.signed_up_at if shopper.new else window.start
    years = max((shopper.active_until - start).total_seconds(), 0.0) / (365 * 86400)
    count = poisson(rng, scale * shopper.browse_rate * years)
    sessions = []
    tz = shopper.person.timezone
    first_day, last_day = _day_of(window, start, tz) + 1, _day_of(window, shopper.active_until, tz)
    for n in range(count):
        day = rng.randint(first_day, last_day) if last_day >= first_day else first_day
        visit = Session(
            actor=index,
            serial=first_serial + n,
            start=local_start(rng, window, day, shopper.person.timezone),
            kind="browse",
            device=int(rng.random() < shopper.switch_share),
        )
        visit.login_hint = _login_hint(rng)
        _browse_shape(rng, visit)
        sessions.append(visit)
    return sessions


def visitor_sessions(seed: int, actor: int, visitor: Visitor, window: Window, scale: float) -> list[Session]:
    """An anonymous visitor's few visits, close together: most never come back."""
    rng = seeded(seed, "visitor-sessions", actor)
    count = poisson(rng, scale * 1.6)
    first_day = rng.randint(1, WINDOW_DAYS - 3)
    sessions = []
    for n in range(count):
        day = first_day + (0 if n == 0 else rng.randint(0, 30))
        visit = Session(
            actor=actor,
            serial=n,
            start=local_start(rng, window, day, visitor.timezone),
            kind="browse",
            anonymous=True,
        )
        _browse_shape(rng, visit, 0.6)
        sessions.append(visit)
    return sessions


# -- fitting the plan to the requested size ------------------------------------------------------


def _pad(rng: random.Random, sessions: list[Session], missing: int, plan: Plan) -> None:
    """Add plain page views to random visits (new one-page visits if there are none)."""
    web = [s for s in sessions if s.web]
    if not web:
        shopper = plan.shoppers[0]
        start = max(plan.window.start + timedelta(days=WINDOW_DAYS // 2), shopper.signed_up_at + timedelta(days=1))
        visit = Session(actor=0, serial=10**6, start=min(start, plan.window.end - timedelta(days=2)), kind="browse")
        visit.pages = 0
        sessions.append(visit)
        web = [visit]
    for visit in rng.choices(web, k=missing):
        visit.pages += 1


def _removal_rank(session: Session, people: int) -> int:
    """What goes first when there are too many events: plain browsing, last the sign-ups."""
    if session.kind == "browse":
        return 1 if session.anonymous and session.actor < people else 0
    return {"refund": 2, "purchase": 3, "signup": 4}[session.kind]


def _trim(rng: random.Random, sessions: list[Session], excess: int, plan: Plan) -> list[Session]:
    """Drop extra page views, then whole sessions (least telling first), to lose `excess` events."""
    extra = [s for s in sessions if s.web for _ in range(s.pages - 1)]
    rng.shuffle(extra)
    for visit in extra[:excess]:
        visit.pages -= 1
    excess -= min(excess, len(extra))
    if excess == 0:
        return sessions
    order = sorted(range(len(sessions)), key=lambda i: (_removal_rank(sessions[i], len(plan.shoppers)), rng.random()))
    removed: set[int] = set()
    for i in order:
        if excess <= 0:
            break
        removed.add(i)
        excess -= sessions[i].tracked
    kept = [s for i, s in enumerate(sessions) if i not in removed]
    if excess < 0:
        _pad(rng, kept, -excess, plan)
    return kept


def _finalise(seed: int, plan: Plan, by_actor: dict[int, list[Session]]) -> None:
    """Decide where sign-ins and tier changes happen, give silent customers a profile sync, and
    space each person's sessions so they never overlap and stay inside the window."""
    window = plan.window
    for index, shopper in enumerate(plan.shoppers):
        own = sorted(by_actor.get(index, []), key=lambda s: (s.start, s.serial))
        orders = shopper.prior_orders
        tier = tier_for(orders)
        signed_in: set[int] = set()
        identified = False
        for session in own:
            session.tier = tier
            if session.kind == "refund" or session.anonymous:
                continue
            if session.kind == "signup":
                signed_in.add(session.device)
                identified = True
            elif session.device not in signed_in:
                session.login_after = session.login_hint
                signed_in.add(session.device)
                identified = True
            if session.order:
                orders += 1
                if tier_for(orders) != tier:
                    tier = session.new_tier = tier_for(orders)
        if not identified:
            # Never seen on the website this year: the shop's backend still syncs the profile.
            rng = seeded(seed, "sync", index)
            when = shopper.signed_up_at if shopper.new else local_start(rng, window, rng.randint(1, 360), "UTC")
            own.append(Session(actor=index, serial=10**6 + 1, start=when, kind="sync", pages=0, tier=tier))
            own.sort(key=lambda s: (s.start, s.serial))
        by_actor[index] = own
    for own in by_actor.values():
        own.sort(key=lambda s: (s.start, s.serial))
        _space(own, window)
    for session in (s for own in by_actor.values() for s in own if s.kind == "signup"):
        plan.shoppers[session.actor].signed_up_at = session.start  # spacing may have moved it


def _space(own: Sequence[Session], window: Window) -> None:
    """Push overlapping sessions later, then pull any that ran past the end back in."""
    previous_end: datetime | None = None
    for session in own:
        if previous_end is not None and session.start < previous_end + MIN_BREAK:
            session.start = previous_end + MIN_BREAK
        previous_end = session.start + session.span
    limit = window.end - timedelta(minutes=1)
    for session in reversed(own):
        if session.start + session.span > limit:
            session.start = limit - session.span
        limit = session.start - MIN_BREAK
    if own and own[0].start < window.start:
        raise ValueError("too many events per customer to fit in twelve months")


def _older_subscribers(seed: int, shoppers: list[Shopper], sessions: list[Session]) -> None:
    """Older customers who subscribe do it on one of their visits (new ones do it at sign-up)."""
    visits: dict[int, list[Session]] = {}
    for session in sessions:
        if session.web and not session.anonymous and session.actor < len(shoppers):
            visits.setdefault(session.actor, []).append(session)
    for index, own in visits.items():
        shopper = shoppers[index]
        if shopper.newsletter and not shopper.new:
            seeded(seed, "newsletter", index).choice(own).newsletter = True


def plan_shop(seed: int, people: list[Person], visitors: list[Visitor], window: Window, tracked: int) -> Plan:
    """Every session of the demo, holding exactly `tracked` page and track events in total."""
    shoppers = [draw_shopper(seed, i, person, window) for i, person in enumerate(people)]
    plan = Plan(window, shoppers, visitors)
    core = [core_sessions(seed, i, shopper, window) for i, shopper in enumerate(shoppers)]
    fixed = sum(s.tracked for own in core for s in own)

    def browsing(scale: float) -> list[Session]:
        found = [
            s
            for i, shopper in enumerate(shoppers)
            for s in browse_sessions(seed, i, shopper, window, scale, len(core[i]))
        ]
        offset = len(shoppers)
        found += [
            s for v, visitor in enumerate(visitors) for s in visitor_sessions(seed, offset + v, visitor, window, scale)
        ]
        return found

    unit = sum(s.tracked for s in browsing(1.0))
    scale = max(tracked - fixed, 0) / unit if unit else 0.0
    plan.browse_scale = scale
    sessions = [s for own in core for s in own] + (browsing(scale) if scale > 0 else [])
    _older_subscribers(seed, shoppers, sessions)
    total = sum(s.tracked for s in sessions)
    rng = seeded(seed, "fit")
    if total < tracked:
        _pad(rng, sessions, tracked - total, plan)
    elif total > tracked:
        sessions = _trim(rng, sessions, total - tracked, plan)

    by_actor: dict[int, list[Session]] = {}
    for session in sessions:
        by_actor.setdefault(session.actor, []).append(session)
    _finalise(seed, plan, by_actor)
    plan.sessions = sorted((s for own in by_actor.values() for s in own), key=lambda s: (s.start, s.actor, s.serial))
    return plan
