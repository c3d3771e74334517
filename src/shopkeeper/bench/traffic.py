"""Synthetic Segment traffic: a shop's visitors sending track, page and identify calls.

The server's cost depends on what events carry (identifiers to resolve, emails and phones to
normalise, JSON to store), so the bench sends what analytics.js and the server-side libraries
send — not `{"event": "x"}` — and reuses a fixed population of people, as real traffic does.
Everything here runs before the clock starts.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_FIRST = (
    "Ana",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kai",
    "Lena",
    "Mateo",
    "Nora",
    "Oskar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Uma",
    "Viktor",
    "Wen",
    "Yusuf",
)
_LAST = (
    "Almeida",
    "Becker",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Hansen",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "López",
    "Müller",
    "Novak",
    "O'Brien",
    "Patel",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Umarov",
    "Virtanen",
    "Weber",
    "Yilmaz",
    "Zielinski",
)
_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "gmx.de", "example.org")
_PLACES = (
    ("Berlin", "DE", "Europe/Berlin", "de-DE", "+49151########"),
    ("Lisbon", "PT", "Europe/Lisbon", "pt-PT", None),
    ("Paris", "FR", "Europe/Paris", "fr-FR", "+336########"),
    ("New York", "US", "America/New_York", "en-US", "+120255501##"),
    ("San Francisco", "US", "America/Los_Angeles", "en-US", "+141555501##"),
    ("Tokyo", "JP", "Asia/Tokyo", "ja-JP", None),
    ("Madrid", "ES", "Europe/Madrid", "es-ES", None),
    ("Warsaw", "PL", "Europe/Warsaw", "pl-PL", None),
)
_WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
_SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1"
_AGENTS = (
    f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_WEBKIT} Chrome/131.0.0.0 Safari/537.36",
    f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_SAFARI} Safari/605.1.15",
    f"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) {_SAFARI} Mobile/15E148 Safari/604.1",
    f"Mozilla/5.0 (Linux; Android 14; Pixel 8) {_WEBKIT} Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
_CATEGORIES = ("Coffee", "Tea", "Brewing Gear", "Mugs", "Gift Cards", "Subscriptions")
_PRODUCTS = tuple(
    {
        "product_id": f"prod_{i:05d}",
        "sku": f"SKU-{i:05d}",
        "name": f"{adj} {noun}",
        "category": _CATEGORIES[i % len(_CATEGORIES)],
        "brand": ("Hill Roasters", "Bluebird", "Kettle & Co")[i % 3],
        "price": round(4.5 + (i * 7.31) % 90, 2),
    }
    for i, (adj, noun) in enumerate(
        (a, n)
        for a in ("Ethiopian", "Colombian", "Sumatra", "House", "Decaf", "Sencha", "Assam", "Ceramic")
        for n in ("Whole Bean 250g", "Ground 500g", "Sampler", "Pour-Over Kit", "Travel Mug", "Gift Box")
    )
)
_REFERRERS = (
    "https://www.google.com/",
    "https://www.instagram.com/",
    "https://duckduckgo.com/",
    "",
    "",
    "https://newsletter.example.com/",
)
_PAGES = (
    ("/", "Home"),
    ("/shop", "Shop"),
    ("/shop/coffee", "Coffee"),
    ("/shop/tea", "Tea"),
    ("/cart", "Cart"),
    ("/about", "Our story"),
    ("/blog/brewing-guide", "Brewing guide"),
)
_SITE = "https://shop.example.com"
_WEB_LIBRARY = {"name": "analytics.js", "version": "next-1.74.0"}
_SERVER_LIBRARY = {"name": "analytics-python", "version": "2.3.3"}


@dataclass(frozen=True, slots=True)
class Person:
    """One visitor. `user_id` is None for people who never sign in."""

    anonymous_id: str
    user_id: str | None
    email: str
    first_name: str
    last_name: str
    phone: str | None
    city: str
    country: str
    timezone: str
    locale: str
    ip: str
    user_agent: str
    created_at: str


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Traffic:
    """Generates events for a fixed population; seeded, so two runs send the same people and
    the same mix. Message ids are random per run (uuid4), so a rerun against a kept database
    stores new events instead of being dropped as retries."""

    def __init__(self, people: int = 50_000, *, seed: int = 7, now: datetime | None = None) -> None:
        if people < 1:
            raise ValueError("people must be at least 1")
        self.rng = random.Random(seed)
        self.now = now or datetime.now(UTC)
        self.people = [self._person(i) for i in range(people)]

    def _person(self, i: int) -> Person:
        rng = self.rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, country, tz, locale, phone_template = rng.choice(_PLACES)
        phone = None
        if phone_template and rng.random() < 0.4:
            # Valid numbers (normalised and linked by the server); the US ones are 555-01xx fiction.
            phone = "".join(str(rng.randrange(10)) if c == "#" else c for c in phone_template)
        plain = f"{first}.{last}".lower().replace("é", "e").replace("í", "i").replace("ü", "u").replace("'", "")
        return Person(
            anonymous_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            user_id=f"user_{i:07d}" if rng.random() < 0.6 else None,
            email=f"{plain}.{i}@{rng.choice(_DOMAINS)}",
            first_name=first,
            last_name=last,
            phone=phone,
            city=city,
            country=country,
            timezone=tz,
            locale=locale,
            ip=f"203.0.{rng.randrange(113, 120)}.{rng.randrange(1, 255)}",
            user_agent=rng.choice(_AGENTS),
            created_at=_iso(self.now - timedelta(days=rng.randrange(1, 900))),
        )

    def _pick_person(self) -> Person:
        # Skewed: a few people are far more active than most, as on any shop.
        return self.people[int(len(self.people) * self.rng.random() ** 2)]

    def _web_context(self, p: Person, path: str, title: str) -> dict[str, Any]:
        rng = self.rng
        context: dict[str, Any] = {
            "library": _WEB_LIBRARY,
            "ip": p.ip,
            "locale": p.locale,
            "timezone": p.timezone,
            "userAgent": p.user_agent,
            "page": {
                "path": path,
                "referrer": rng.choice(_REFERRERS),
                "search": "",
                "title": f"{title} — Hill Roasters",
                "url": _SITE + path,
            },
        }
        if "Chrome/" in p.user_agent:
            context["userAgentData"] = {
                "brands": [{"brand": "Chromium", "version": "131"}, {"brand": "Google Chrome", "version": "131"}],
                "mobile": "Mobile" in p.user_agent,
                "platform": "Android" if "Android" in p.user_agent else "Windows",
            }
        context["screen"] = {"width": 1440, "height": 900, "density": 2}
        if rng.random() < 0.2:
            context["campaign"] = {
                "name": "spring_sale",
                "source": "newsletter",
                "medium": "email",
                "content": f"variant_{rng.randrange(3)}",
            }
        return context

    def _ids(self, p: Person, event: dict[str, Any], *, server: bool = False) -> None:
        """Signed-in people send both ids from the browser, only `userId` from the server, and
        only `anonymousId` before they sign in: the mix that makes identity resolution link and
        occasionally merge profiles."""
        if p.user_id is None:
            event["anonymousId"] = p.anonymous_id
            return
        if server:
            event["userId"] = p.user_id
            return
        event["anonymousId"] = p.anonymous_id
        if self.rng.random() < 0.8:
            event["userId"] = p.user_id

    def _base(self, kind: str, sent_at: datetime) -> dict[str, Any]:
        return {
            "type": kind,
            "messageId": str(uuid.uuid4()),
            "timestamp": _iso(sent_at - timedelta(milliseconds=self.rng.randrange(50, 5000))),
            "integrations": {},
        }

    def _line_item(self) -> dict[str, Any]:
        product = self.rng.choice(_PRODUCTS)
        return {
            **product,
            "quantity": self.rng.randrange(1, 4),
            "url": f"{_SITE}/p/{product['product_id']}",
            "image_url": f"https://cdn.example.com/img/{product['product_id']}.jpg",
        }

    def track(self, sent_at: datetime) -> dict[str, Any]:
        rng = self.rng
        p = self._pick_person()
        roll = rng.random()
        if p.user_id is not None and roll < 0.08:
            event = self._base("track", sent_at)
            self._ids(p, event, server=True)
            items = [self._line_item() for _ in range(rng.randrange(1, 4))]
            subtotal = round(sum(i["price"] * i["quantity"] for i in items), 2)
            event["event"] = "Order Completed"
            event["properties"] = {
                "order_id": f"ord_{rng.getrandbits(40):x}",
                "affiliation": "web",
                "subtotal": subtotal,
                "shipping": 4.9,
                "tax": round(subtotal * 0.19, 2),
                "total": round(subtotal * 1.19 + 4.9, 2),
                "currency": "EUR",
                "products": items,
            }
            event["context"] = {"library": _SERVER_LIBRARY}
            return event
        event = self._base("track", sent_at)
        self._ids(p, event)
        item = self._line_item()
        if roll < 0.55:
            event["event"] = "Product Viewed"
            event["properties"] = {**item, "currency": "EUR", "position": rng.randrange(1, 25)}
        elif roll < 0.75:
            event["event"] = "Product Added"
            event["properties"] = {**item, "cart_id": f"cart_{rng.getrandbits(32):x}", "currency": "EUR"}
        elif roll < 0.9:
            event["event"] = "Products Searched"
            event["properties"] = {"query": rng.choice(("decaf", "ethiopian", "gift", "grinder", "mug", "sampler"))}
        else:
            event["event"] = "Checkout Started"
            event["properties"] = {
                "order_id": f"ord_{rng.getrandbits(40):x}",
                "value": item["price"],
                "currency": "EUR",
                "products": [item],
            }
        event["context"] = self._web_context(p, f"/p/{item['product_id']}", str(item["name"]))
        return event

    def page(self, sent_at: datetime) -> dict[str, Any]:
        p = self._pick_person()
        path, title = self.rng.choice(_PAGES)
        event = self._base("page", sent_at)
        self._ids(p, event)
        context = self._web_context(p, path, title)
        event["name"] = title
        event["properties"] = {**context["page"]}
        event["context"] = context
        return event

    def identify(self, sent_at: datetime) -> dict[str, Any]:
        p = self._pick_person()
        event = self._base("identify", sent_at)
        self._ids(p, event)
        traits: dict[str, Any] = {
            "email": p.email,
            "firstName": p.first_name,
            "lastName": p.last_name,
            "name": f"{p.first_name} {p.last_name}",
            "createdAt": p.created_at,
            "plan": self.rng.choice(("free", "free", "subscriber", "vip")),
            "address": {"city": p.city, "country": p.country},
            "timezone": p.timezone,
            "locale": p.locale,
            "newsletter": self.rng.random() < 0.5,
        }
        if p.phone is not None:
            traits["phone"] = p.phone
        event["traits"] = traits
        event["context"] = self._web_context(p, "/account", "Your account")
        return event

    def event(self, sent_at: datetime) -> dict[str, Any]:
        """One event of the mix: 60 % track, 30 % page, 10 % identify."""
        roll = self.rng.random()
        if roll < 0.6:
            return self.track(sent_at)
        if roll < 0.9:
            return self.page(sent_at)
        return self.identify(sent_at)

    def batch_bodies(self, events: int, batch_size: int) -> Iterator[tuple[bytes, int]]:
        """Serialised /v1/batch bodies and how many events each holds."""
        sent = 0
        while sent < events:
            n = min(batch_size, events - sent)
            sent_at = self.now
            payload = {"batch": [self.event(sent_at) for _ in range(n)], "sentAt": _iso(sent_at)}
            yield orjson.dumps(payload), n
            sent += n

    def track_bodies(self, count: int) -> Iterator[bytes]:
        """Serialised single /v1/track bodies (what a client without batching sends)."""
        for _ in range(count):
            event = self.track(self.now)
            event["sentAt"] = _iso(self.now)
            yield orjson.dumps(event)
