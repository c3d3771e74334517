"""`shopkeeper demo`'s generator: deterministic, exactly the requested size, and realistic —
valid contacts, consistent locales and zones, a year of ordered e-commerce behaviour."""

from __future__ import annotations

import ipaddress
import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import phonenumbers
import pytest
from email_validator import validate_email

from shopkeeper.demo.generator import DemoOptions, DemoShop
from shopkeeper.errors import Invalid
from shopkeeper.events.schemas import to_inbound
from tests.demo.conftest import UNTIL, build

Payload = dict[str, Any]
# RFC 5737 and RFC 3849: addresses reserved for documentation.
DOCUMENTATION_NETWORKS = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]
RESERVED_EMAIL_DOMAINS = {"example.com", "example.net", "example.org"}  # RFC 2606
ZONE_TAB = Path("/usr/share/zoneinfo/zone.tab")


def when(payload: Payload) -> datetime:
    return datetime.fromisoformat(payload["timestamp"])


def tracked(payloads: list[Payload]) -> list[Payload]:
    return [p for p in payloads if p["type"] in ("page", "track")]


def identifies(payloads: list[Payload]) -> list[Payload]:
    return [p for p in payloads if p["type"] == "identify"]


def users_of_cookies(payloads: list[Payload]) -> dict[str, str]:
    """anonymousId → userId, as the identify calls link them."""
    return {p["anonymousId"]: p["userId"] for p in identifies(payloads) if "anonymousId" in p}


def owner(payload: Payload, users: dict[str, str]) -> str:
    """The person behind an event: their userId, or their cookie if they never signed in."""
    if "userId" in payload:
        return str(payload["userId"])
    cookie = payload["anonymousId"]
    return users.get(cookie, f"cookie:{cookie}")


def latest_traits(payloads: list[Payload]) -> dict[str, dict[str, Any]]:
    traits: dict[str, dict[str, Any]] = {}
    for p in identifies(payloads):
        traits[p["userId"]] = p["traits"]
    return traits


# -- determinism ---------------------------------------------------------------------------------


def test_the_same_options_give_byte_identical_payloads(payloads: list[Payload]) -> None:
    again = list(build().payloads())
    assert orjson.dumps(again) == orjson.dumps(payloads)


def test_another_seed_gives_other_people_and_other_message_ids(payloads: list[Payload]) -> None:
    other = list(build(seed=43).payloads())
    ours, theirs = latest_traits(payloads), latest_traits(other)
    assert {t["email"] for t in ours.values()} != {t["email"] for t in theirs.values()}
    assert not {p["messageId"] for p in payloads} & {p["messageId"] for p in other}
    assert [p.get("properties") for p in payloads[:50]] != [p.get("properties") for p in other[:50]]


def test_another_end_date_gives_other_message_ids_and_moves_the_year(payloads: list[Payload]) -> None:
    other = list(build(until=UNTIL + timedelta(days=30)).payloads())
    assert not {p["messageId"] for p in payloads} & {p["messageId"] for p in other}
    assert max(map(when, other)) > max(map(when, payloads))


def test_message_ids_are_unique(payloads: list[Payload]) -> None:
    ids = [p["messageId"] for p in payloads]
    assert len(set(ids)) == len(ids)


# -- size ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("customers", "events"), [(400, 8_000), (50, 0), (50, 37), (20, 5_000), (1, 300)])
def test_page_and_track_events_add_up_to_exactly_the_requested_number(customers: int, events: int) -> None:
    shop = build(customers=customers, events=events)
    payloads = list(shop.payloads())
    assert len(tracked(payloads)) == events
    assert len(payloads) == shop.event_count


@pytest.mark.parametrize("events", [0, 37, 8_000])
def test_every_customer_is_identified_whatever_the_size(events: int) -> None:
    shop = build(customers=50, events=events)
    payloads = list(shop.payloads())
    assert set(latest_traits(payloads)) == {p.user_id for p in shop.people}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"customers": 0}, "customers"),
        ({"events": -1}, "events"),
        ({"customers": 2, "events": 10**7}, "events"),
    ],
)
def test_impossible_options_are_refused(options: dict[str, int], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        DemoShop.build(DemoOptions(until=UNTIL, **options))
    assert caught.value.field == field


# -- Segment shape -------------------------------------------------------------------------------


def test_every_payload_is_a_valid_segment_message_with_its_own_time(payloads: list[Payload]) -> None:
    for payload in payloads:
        event = to_inbound(payload, received_at=when(payload))
        assert event.message_id == payload["messageId"]
        assert event.timestamp == when(payload)


def test_page_events_carry_url_path_and_referrer(payloads: list[Payload]) -> None:
    pages = [p for p in payloads if p["type"] == "page"]
    assert pages
    for page in pages:
        props = page["properties"]
        assert props["url"].endswith(props["path"] + props["search"])
        assert props["url"].startswith("https://")
        assert "referrer" in props
        assert page["context"]["page"] == props
    internal = [p for p in pages if p["properties"]["referrer"].startswith("https://shop.")]
    assert internal, "later pages of a visit are referred by the page before"


def test_web_events_carry_time_zone_locale_user_agent_and_a_documentation_ip(payloads: list[Payload]) -> None:
    web = [p for p in payloads if p["context"].get("library", {}).get("name") == "analytics.js"]
    assert len(web) > len(payloads) / 2
    for payload in web:
        context = payload["context"]
        ZoneInfo(context["timezone"])
        assert re.fullmatch(r"[a-z]{2}-[A-Z]{2}", context["locale"])
        assert context["userAgent"].startswith("Mozilla/5.0")
        ip = ipaddress.ip_address(context["ip"])
        assert any(ip in network for network in DOCUMENTATION_NETWORKS), ip


def test_ecommerce_events_follow_the_segment_spec(payloads: list[Payload]) -> None:
    names = Counter(p["event"] for p in payloads if p["type"] == "track")
    for name in (
        "Products Searched",
        "Product Viewed",
        "Product Added",
        "Cart Viewed",
        "Checkout Started",
        "Order Completed",
        "Order Refunded",
        "Signed Up",
        "Newsletter Subscribed",
    ):
        assert names[name] > 0, name
    # A funnel narrows.
    assert names["Product Viewed"] > names["Product Added"] > names["Order Completed"]
    assert names["Checkout Started"] >= names["Order Completed"]


def test_orders_add_up(payloads: list[Payload]) -> None:
    orders = [p["properties"] for p in payloads if p.get("event") == "Order Completed"]
    assert len({o["order_id"] for o in orders}) == len(orders)
    for order in orders:
        assert order["currency"]
        assert order["products"]
        for item in order["products"]:
            assert set(item) >= {"product_id", "sku", "name", "category", "price", "quantity"}
            assert item["price"] > 0 and item["quantity"] >= 1
        subtotal = sum(i["price"] * i["quantity"] for i in order["products"])
        assert order["subtotal"] == pytest.approx(subtotal, abs=0.01)
        assert order["revenue"] == pytest.approx(order["subtotal"] - order["discount"], abs=0.01)
        assert order["total"] == pytest.approx(order["revenue"] + order["shipping"], abs=0.01)


def test_refunds_name_an_earlier_order_of_the_same_customer(payloads: list[Payload]) -> None:
    placed: dict[str, tuple[str, datetime, float]] = {}
    refunds = 0
    for payload in payloads:
        if payload.get("event") == "Order Completed":
            props = payload["properties"]
            placed[props["order_id"]] = (payload["userId"], when(payload), props["total"])
        elif payload.get("event") == "Order Refunded":
            refunds += 1
            user, ordered_at, total = placed[payload["properties"]["order_id"]]
            assert payload["userId"] == user
            assert when(payload) > ordered_at
            assert payload["properties"]["total"] == total
    assert refunds


def test_the_catalogue_is_a_few_hundred_products_in_a_handful_of_categories(payloads: list[Payload]) -> None:
    viewed = [p["properties"] for p in payloads if p.get("event") == "Product Viewed"]
    products = {v["product_id"]: v["category"] for v in viewed}
    assert 100 <= len(products) <= 300
    assert 4 <= len(set(products.values())) <= 12
    popularity = Counter(v["product_id"] for v in viewed).most_common()
    assert popularity[0][1] > 5 * popularity[len(popularity) // 2][1], "a few bestsellers, a long tail"


# -- people --------------------------------------------------------------------------------------


def test_identify_traits_describe_the_customer(payloads: list[Payload]) -> None:
    for payload in identifies(payloads):
        traits = payload["traits"]
        assert traits["name"] and traits["first_name"] and traits["last_name"]
        assert traits["first_name"] in traits["name"] and traits["last_name"] in traits["name"]
        assert datetime.fromisoformat(traits["created_at"]) <= when(payload)
        assert traits["loyalty_tier"]
        assert re.fullmatch(r"[A-Z]{2}", traits["address"]["country"])


def test_every_email_is_valid_unique_and_on_a_reserved_domain(payloads: list[Payload]) -> None:
    emails = {user: t["email"] for user, t in latest_traits(payloads).items()}
    assert len(set(emails.values())) == len(emails)
    for email in emails.values():
        assert validate_email(email, check_deliverability=False).normalized == email
        assert email.rsplit("@", 1)[1] in RESERVED_EMAIL_DOMAINS


def test_every_phone_is_valid_e164_for_the_customers_country_and_unique(payloads: list[Payload]) -> None:
    people = latest_traits(payloads)
    phones = {user: t["phone"] for user, t in people.items() if "phone" in t}
    assert len(phones) > len(people) / 2
    assert len(set(phones.values())) == len(phones)
    for user, phone in phones.items():
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone
        assert phonenumbers.region_code_for_number(number) == people[user]["address"]["country"]


def test_time_zones_and_locales_fit_the_customers_country(payloads: list[Payload]) -> None:
    if not ZONE_TAB.exists():
        pytest.skip("needs the system tz database's zone.tab")
    zones_of: dict[str, set[str]] = defaultdict(set)
    for line in ZONE_TAB.read_text().splitlines():
        if line and not line.startswith("#"):
            country, _, zone = line.split("\t")[:3]
            zones_of[country].add(zone)
    people = latest_traits(payloads)
    seen_locales = set()
    for payload in identifies(payloads):
        country = people[payload["userId"]]["address"]["country"]
        context = payload["context"]
        assert context["timezone"] in zones_of[country], (country, context["timezone"])
        assert context["locale"].split("-")[1] == country
        seen_locales.add(context["locale"])
    assert len(seen_locales) >= 8


def test_names_are_written_as_people_of_that_locale_write_them(payloads: list[Payload]) -> None:
    by_locale: dict[str, set[str]] = defaultdict(set)
    for payload in identifies(payloads):
        by_locale[payload["context"]["locale"]].add(payload["traits"]["last_name"])
    # No surname is shared by every locale: the lists differ per country.
    assert len(set.intersection(*by_locale.values())) == 0
    japanese = by_locale.get("ja-JP", set())
    assert japanese and all(not name.isascii() for name in japanese)


# -- behaviour over the year ---------------------------------------------------------------------


def test_every_event_lies_in_the_twelve_months_before_the_end_date(payloads: list[Payload]) -> None:
    end = datetime(UNTIL.year, UNTIL.month, UNTIL.day, tzinfo=UTC)
    start = end.replace(year=end.year - 1)
    times = sorted(map(when, payloads))
    assert start <= times[0] and times[-1] < end
    assert times[0] < start + timedelta(days=14) and times[-1] > end - timedelta(days=7), "the whole year is used"


def test_each_persons_events_come_in_time_order(payloads: list[Payload]) -> None:
    users = users_of_cookies(payloads)
    last: dict[str, datetime] = {}
    for payload in payloads:
        person = owner(payload, users)
        assert last.get(person, datetime.min.replace(tzinfo=UTC)) <= when(payload), person
        last[person] = when(payload)


def test_some_visitors_browse_anonymously_and_identify_later(payloads: list[Payload]) -> None:
    users = users_of_cookies(payloads)
    anonymous_first = set()
    signed_in: set[str] = set()
    for payload in payloads:
        cookie = payload.get("anonymousId")
        if payload["type"] == "identify" and cookie:
            signed_in.add(cookie)
        elif cookie in users and "userId" not in payload and cookie not in signed_in:
            anonymous_first.add(cookie)
    assert len(anonymous_first) >= 10


def test_some_visitors_never_identify(payloads: list[Payload]) -> None:
    users = users_of_cookies(payloads)
    strangers = {p["anonymousId"] for p in payloads if "anonymousId" in p and p["anonymousId"] not in users}
    assert strangers
    assert not any("userId" in p for p in payloads if p.get("anonymousId") in strangers)


def test_purchase_frequency_has_a_long_tail() -> None:
    shop = build(customers=2_000, events=40_000)
    payloads = list(shop.payloads())
    orders = Counter(p["userId"] for p in payloads if p.get("event") == "Order Completed")
    per_customer = [orders.get(person.user_id, 0) for person in shop.people]
    frequency = Counter(n for n in per_customer if n)
    # Many one-time buyers, fewer at each step up, and a few loyal repeat buyers.
    assert frequency[1] > frequency[2] > frequency[3] > 0
    assert max(per_customer) >= 6
    # Gamma-distributed rates make order counts overdispersed: variance well above the mean.
    assert statistics.variance(per_customer) > 1.5 * statistics.mean(per_customer)
    # Customers drop out: some buyers' last order is long before the end.
    last_order = {p["userId"]: when(p) for p in payloads if p.get("event") == "Order Completed"}
    end = max(map(when, payloads))
    assert sum(1 for t in last_order.values() if end - t > timedelta(days=180)) > len(last_order) / 10


def test_loyalty_tiers_rise_with_orders(payloads: list[Payload]) -> None:
    tiers: dict[str, list[str]] = defaultdict(list)
    for payload in identifies(payloads):
        history = tiers[payload["userId"]]
        if not history or history[-1] != payload["traits"]["loyalty_tier"]:
            history.append(payload["traits"]["loyalty_tier"])
    assert any(len(h) > 1 for h in tiers.values()), "someone's tier changed"
    assert len({h[-1] for h in tiers.values()}) >= 3
