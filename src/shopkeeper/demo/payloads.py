"""Turning planned sessions into Segment Tracking API payloads, as analytics.js and a shop
backend would send them: pages, e-commerce track events, identify calls with traits.

Each session draws from its own seeded stream and every messageId is a UUIDv5 of the run's
options and the event's place in the plan, so the same options give byte-identical payloads and
a re-run is deduplicated event by event.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from shopkeeper.demo.behaviour import Session, Shopper
from shopkeeper.demo.catalogue import BY_CATEGORY, CATALOGUE, CATEGORIES, CURRENCY, SITE, Product, slugify
from shopkeeper.demo.people import Device, Visitor, seeded

WEB_LIBRARY = {"name": "analytics.js", "version": "next-1.72.0"}
SERVER_LIBRARY = {"name": "analytics-python", "version": "2.3.3"}
FREE_SHIPPING_FROM = 49.0
SHIPPING = 4.9
VAT_SHARE = 1 / 6  # the VAT inside a price at 20 %

_CONTENT_PAGES = (
    ("/", "Home", "Demo Shop – coffee, tea and the things around them"),
    ("/about", "About", "Our roastery"),
    ("/blog/brewing-guide", "Brewing guide", "How to brew better coffee at home"),
    ("/blog/tea-temperatures", "Tea temperatures", "The right water for every tea"),
    ("/help/shipping", "Shipping", "Shipping and returns"),
    ("/sale", "Sale", "Sale"),
)
_SEARCH_ENGINES = ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/")
_SOCIAL = ("https://www.instagram.com/", "https://www.pinterest.com/", "https://www.facebook.com/")
_COUPONS = (("WELCOME10", 0.10), ("SPRING15", 0.15), ("LOYAL20", 0.20))


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _page(path: str, title: str, referrer: str) -> dict[str, str]:
    base, _, query = path.partition("?")
    return {
        "path": base,
        "referrer": referrer,
        "search": f"?{query}" if query else "",
        "title": title,
        "url": f"{SITE}{path}",
    }


def _item(product: Product, quantity: int) -> dict[str, Any]:
    return {**product.as_properties(), "quantity": quantity}


class Renderer:
    """Renders sessions in time order; remembers orders so a later refund can name them."""

    def __init__(self, seed: int, namespace: uuid.UUID, shoppers: list[Shopper], visitors: list[Visitor]) -> None:
        self.seed = seed
        self.namespace = namespace
        self.shoppers = shoppers
        self.visitors = visitors
        self._orders: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_order = 100_001
        self._category_weights = [sum(p.popularity for p in BY_CATEGORY[c.name]) for c in CATEGORIES]

    def render(self, session: Session) -> list[dict[str, Any]]:
        rng = seeded(self.seed, "render", session.actor, session.serial)
        if session.kind == "sync":
            return [self._sync(session)]
        if session.kind == "refund":
            return [self._refund(session)]
        return _Visit(self, session, rng).run()

    def message_id(self, session: Session, number: int) -> str:
        return str(uuid.uuid5(self.namespace, f"{session.actor}/{session.serial}/{number}"))

    def shopper(self, session: Session) -> Shopper | None:
        return self.shoppers[session.actor] if session.actor < len(self.shoppers) else None

    def traits(self, shopper: Shopper, tier: str) -> dict[str, Any]:
        person = shopper.person
        traits: dict[str, Any] = {
            "name": person.name,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "email": person.email,
            "created_at": iso(shopper.signed_up_at),
            "loyalty_tier": tier,
            "address": {"city": person.city, "country": person.country},
        }
        if person.phone:
            traits["phone"] = person.phone
        return traits

    def pick_products(self, rng: random.Random, affinity: tuple[float, ...] | None, count: int) -> list[Product]:
        """Distinct products: a category by the person's taste, then a product by popularity."""
        weights = self._category_weights
        if affinity is not None:
            weights = [w * a for w, a in zip(weights, affinity, strict=True)]
        chosen: list[Product] = []
        while len(chosen) < min(count, len(CATALOGUE)):
            category = rng.choices(CATEGORIES, weights=weights)[0]
            products = BY_CATEGORY[category.name]
            product = rng.choices(products, weights=[p.popularity for p in products])[0]
            if product not in chosen:
                chosen.append(product)
        return chosen

    def next_order_id(self) -> str:
        self._next_order += 1
        return f"DS-{self._next_order}"

    def remember_order(self, session: Session, properties: dict[str, Any]) -> None:
        self._orders[(session.actor, session.serial)] = properties

    def _server_message(self, session: Session, kind: str, user_id: str) -> dict[str, Any]:
        return {
            "type": kind,
            "messageId": self.message_id(session, 0),
            "timestamp": iso(session.start),
            "userId": user_id,
        }

    def _sync(self, session: Session) -> dict[str, Any]:
        """A backend profile sync for a customer not seen on the website this year."""
        shopper = self.shoppers[session.actor]
        person = shopper.person
        message = self._server_message(session, "identify", person.user_id)
        message["traits"] = self.traits(shopper, session.tier)
        message["context"] = {"library": SERVER_LIBRARY, "timezone": person.timezone, "locale": person.locale}
        return message

    def _refund(self, session: Session) -> dict[str, Any]:
        shopper = self.shoppers[session.actor]
        assert session.refund_of is not None
        order = self._orders.pop((session.actor, session.refund_of))
        message = self._server_message(session, "track", shopper.person.user_id)
        message["event"] = "Order Refunded"
        message["properties"] = {
            "order_id": order["order_id"],
            "total": order["total"],
            "currency": CURRENCY,
            "products": order["products"],
        }
        message["context"] = {"library": SERVER_LIBRARY}
        return message


class _Visit:
    """One website visit being written out: the clock, the current page and who is signed in."""

    def __init__(self, renderer: Renderer, session: Session, rng: random.Random) -> None:
        self.r = renderer
        self.s = session
        self.rng = rng
        self.shopper = renderer.shopper(session)
        if self.shopper is not None:
            person = self.shopper.person
            device: Device = person.devices[session.device]
            locale, timezone = person.locale, person.timezone
        else:
            visitor = renderer.visitors[session.actor - len(renderer.shoppers)]
            device, locale, timezone = visitor.device, visitor.locale, visitor.timezone
        self.anonymous_id = device.anonymous_id
        self.context = {
            "ip": device.ip,
            "locale": locale,
            "timezone": timezone,
            "userAgent": device.user_agent,
            "library": WEB_LIBRARY,
        }
        self.signed_in = not session.anonymous and session.kind != "signup" and session.login_after is None
        self.when = session.start
        self.number = 0  # messages written, identify included: names the next messageId
        self.tracked = 0  # page and track events written: where a sign-in happens
        self.page: dict[str, str] = {}
        self.messages: list[dict[str, Any]] = []
        self.tier = session.tier

    # -- writing messages ------------------------------------------------------------------------
    def _message(self, kind: str, gap: timedelta | None = None) -> dict[str, Any]:
        if self.messages:
            self.when += gap if gap is not None else self._gap()
        message: dict[str, Any] = {
            "type": kind,
            "messageId": self.r.message_id(self.s, self.number),
            "timestamp": iso(self.when),
            "anonymousId": self.anonymous_id,
        }
        if self.signed_in and self.shopper is not None:
            message["userId"] = self.shopper.person.user_id
        self.number += 1
        self.messages.append(message)
        return message

    def _gap(self) -> timedelta:
        seconds = min(max(self.rng.lognormvariate(math.log(25), 0.8), 2.0), 119.0)
        return timedelta(seconds=round(seconds, 3))

    def _before_tracked(self) -> None:
        if not self.signed_in and self.s.login_after is not None and self.tracked >= self.s.login_after:
            self.identify()

    def page_view(self, path: str, name: str, title: str, *, campaign: dict[str, str] | None = None) -> None:
        self._before_tracked()
        referrer = self.page.get("url", "")
        if not self.page:
            referrer = self._landing_referrer(campaign)
        if campaign:
            # context.campaign is what analytics.js reads from these utm_ parameters.
            utm = {f"utm_{'campaign' if key == 'name' else key}": value for key, value in campaign.items()}
            path = f"{path}{'&' if '?' in path else '?'}{urlencode(utm)}"
        self.page = _page(path, title, referrer)
        message = self._message("page")
        message["name"] = name
        message["properties"] = dict(self.page)
        message["context"] = {**self.context, "page": self.page}
        if campaign:
            message["context"]["campaign"] = campaign
        self.tracked += 1

    def track(self, event: str, properties: dict[str, Any]) -> None:
        self._before_tracked()
        message = self._message("track")
        message["event"] = event
        message["properties"] = properties
        message["context"] = {**self.context, "page": self.page}
        self.tracked += 1

    def identify(self, gap: timedelta | None = None) -> None:
        assert self.shopper is not None
        self.signed_in = True
        message = self._message("identify", gap)
        message["traits"] = self.r.traits(self.shopper, self.tier)
        message["context"] = {**self.context, "page": self.page} if self.page else dict(self.context)

    # -- the visit -------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        s, rng = self.s, self.rng
        affinity = self.shopper.affinity if self.shopper is not None else None
        viewed = self.r.pick_products(rng, affinity, s.products)
        if s.order and self.shopper is not None and rng.random() < 0.5:
            staple = self._staple()
            if staple not in viewed[: s.adds]:
                viewed = [staple, *[p for p in viewed if p != staple]][: s.products]
        extra_pages = s.pages - 1

        self._landing(viewed)
        if s.kind == "signup":
            self.page_view("/account/register", "Create account", "Create your account")
            self.track("Signed Up", {"method": "email"})
            self.identify(timedelta(seconds=round(rng.uniform(0.5, 3.0), 3)))
            if s.newsletter:
                self.track(
                    "Newsletter Subscribed",
                    {"list_id": "weekly", "list_name": "Weekly letter", "source": "sign-up form"},
                )
        if s.search:
            category = rng.choice(CATEGORIES)
            query = rng.choice(category.search_terms)
            self.page_view(f"/search?q={query.replace(' ', '+')}", "Search", f"Search: {query}")
            self.track("Products Searched", {"query": query})
        for position, product in enumerate(viewed):
            if extra_pages and rng.random() < 0.5:
                self._plain_page(product.category)
                extra_pages -= 1
            self.page_view(f"/p/{product.slug}", "Product", product.name)
            self.track(
                "Product Viewed",
                {**product.as_properties(), "currency": CURRENCY, "url": product.url, "position": position + 1},
            )
        for _ in range(extra_pages):
            self._plain_page(None)

        cart_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        items = [_item(p, self._quantity()) for p in viewed[: s.adds]]
        for item in items:
            self.track("Product Added", {"cart_id": cart_id, **item, "currency": CURRENCY})
        if s.cart:
            self.page_view("/cart", "Cart", "Your cart")
            self.track("Cart Viewed", {"cart_id": cart_id, "products": items})
        if s.checkout:
            self._checkout(items)
        if s.newsletter and s.kind != "signup":
            self.track("Newsletter Subscribed", {"list_id": "weekly", "list_name": "Weekly letter", "source": "footer"})
        if not self.signed_in and s.login_after is not None:
            self.identify()  # signed in on the last page, after everything else
        return self.messages

    def _landing(self, viewed: list[Product]) -> None:
        rng = self.rng
        campaign = None
        if self.shopper is not None and self.shopper.newsletter and not self.s.anonymous and rng.random() < 0.3:
            campaign = {"source": "newsletter", "medium": "email", "name": f"weekly-{self.when:%Y-%W}"}
        elif rng.random() < 0.12:
            campaign = {"source": "google", "medium": "cpc", "name": "brand-search"}
        # Visits start on the home page, on the category of what they came for, or on an article;
        # campaign links point at categories more often.
        roll = rng.random()
        if viewed and roll < (0.6 if campaign else 0.35):
            self._plain_page(viewed[0].category, campaign)
        elif roll < 0.8:
            path, name, title = _CONTENT_PAGES[0]
            self.page_view(path, name, title, campaign=campaign)
        else:
            path, name, title = rng.choice(_CONTENT_PAGES[1:])
            self.page_view(path, name, title, campaign=campaign)

    def _landing_referrer(self, campaign: dict[str, str] | None) -> str:
        if campaign and campaign["medium"] == "email":
            return ""
        if campaign:
            return _SEARCH_ENGINES[0]
        roll = self.rng.random()
        if roll < 0.4:
            return ""
        if roll < 0.8:
            return self.rng.choice(_SEARCH_ENGINES)
        return self.rng.choice(_SOCIAL)

    def _plain_page(self, category: str | None, campaign: dict[str, str] | None = None) -> None:
        if category is None and self.rng.random() < 0.3:
            path, name, title = self.rng.choice(_CONTENT_PAGES)
            self.page_view(path, name, title, campaign=campaign)
            return
        name = category or self.rng.choice(CATEGORIES).name
        self.page_view(f"/c/{slugify(name)}", "Category", name, campaign=campaign)

    def _quantity(self) -> int:
        roll = self.rng.random()
        return 1 if roll < 0.8 else 2 if roll < 0.95 else 3

    def _staple(self) -> Product:
        """The product this customer keeps coming back for (their coffee or tea, usually)."""
        assert self.shopper is not None
        pick = seeded(self.r.seed, "staple", self.s.actor)
        favourites = BY_CATEGORY["Coffee"] if pick.random() < 0.7 else BY_CATEGORY["Tea"]
        return pick.choices(favourites, weights=[p.popularity for p in favourites])[0]

    def _checkout(self, items: list[dict[str, Any]]) -> None:
        s, rng = self.s, self.rng
        order_id = self.r.next_order_id()
        subtotal = round(sum(i["price"] * i["quantity"] for i in items), 2)
        coupon = None
        if s.order and s.kind == "signup" and rng.random() < 0.3:
            coupon = _COUPONS[0]
        elif s.order and rng.random() < (0.15 if self.tier in ("gold", "platinum") else 0.05):
            coupon = _COUPONS[2] if self.tier in ("gold", "platinum") else _COUPONS[1]
        discount = round(subtotal * coupon[1], 2) if coupon else 0.0
        revenue = round(subtotal - discount, 2)
        shipping = 0.0 if revenue >= FREE_SHIPPING_FROM else SHIPPING
        self.page_view("/checkout", "Checkout", "Checkout")
        self.track(
            "Checkout Started",
            {"order_id": order_id, "value": revenue, "revenue": revenue, "currency": CURRENCY, "products": items},
        )
        if not s.order:
            return
        properties: dict[str, Any] = {
            "order_id": order_id,
            "total": round(revenue + shipping, 2),
            "subtotal": subtotal,
            "revenue": revenue,
            "shipping": shipping,
            "tax": round(revenue * VAT_SHARE, 2),
            "discount": discount,
            "currency": CURRENCY,
            "products": items,
        }
        if coupon:
            properties["coupon"] = coupon[0]
        self.page_view("/checkout/complete", "Order confirmation", "Thank you for your order")
        self.track("Order Completed", properties)
        self.r.remember_order(s, properties)
        if s.new_tier is not None:
            self.tier = s.new_tier
            self.identify(timedelta(seconds=round(rng.uniform(0.5, 2.0), 3)))
