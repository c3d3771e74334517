"""The demo shop's people: named customers with contact details, and anonymous visitors.

Every person is drawn from their own seeded random stream, so person *n* is the same whatever
the size of the demo; only collisions (an email or phone already taken) look at earlier people.
Contact details are safe to hold: emails use the reserved example.com/.net/.org domains and IP
addresses come from the documentation ranges, so nothing here names a real mailbox or host.
"""

from __future__ import annotations

import ipaddress
import random
import uuid
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from shopkeeper.demo.names import LOCALES, City, LocaleData, Name

PHONE_SHARE = 0.8  # customers who gave a phone number at checkout
EMAIL_DOMAINS = (("example.com", 6), ("example.net", 3), ("example.org", 1))
# RFC 5737 (IPv4) and RFC 3849 (IPv6) documentation ranges.
DOCUMENTATION_NETWORKS = (
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
    ipaddress.ip_network("2001:db8::/32"),
)

DESKTOP_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 "
    "Edg/124.0.2478.80",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
)
MOBILE_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
)


@dataclass(frozen=True, slots=True)
class Device:
    """A browser: its cookie (the Segment anonymousId), user agent and usual IP address."""

    anonymous_id: str
    user_agent: str
    ip: str
    mobile: bool


@dataclass(frozen=True, slots=True)
class Person:
    """A customer with an account: what identify calls say about them."""

    user_id: str
    first_name: str
    last_name: str
    name: str
    email: str
    phone: str | None  # E.164
    locale: str
    country: str
    city: str
    timezone: str
    devices: tuple[Device, Device]  # the usual browser, and one they sometimes switch to


@dataclass(frozen=True, slots=True)
class Visitor:
    """Someone who browses without ever signing in: known only by a cookie."""

    locale: str
    timezone: str
    device: Device


def seeded(seed: int, *parts: object) -> random.Random:
    """An independent, reproducible stream per purpose (a str seed is hashed with SHA-512)."""
    return random.Random(":".join(["shopkeeper-demo", str(seed), *map(str, parts)]))


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pick_locale(rng: random.Random) -> LocaleData:
    return rng.choices(LOCALES, weights=[loc.weight for loc in LOCALES])[0]


def _pick_city(rng: random.Random, locale: LocaleData) -> City:
    return rng.choices(locale.cities, weights=[c.weight for c in locale.cities])[0]


def documentation_ip(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return str(ipaddress.IPv6Address(int(DOCUMENTATION_NETWORKS[3].network_address) + rng.getrandbits(96)))
    network = DOCUMENTATION_NETWORKS[rng.randrange(3)]
    return str(network.network_address + rng.randint(1, 254))


def draw_device(rng: random.Random, mobile: bool) -> Device:
    agents = MOBILE_AGENTS if mobile else DESKTOP_AGENTS
    return Device(random_uuid(rng), rng.choice(agents), documentation_ip(rng), mobile)


@lru_cache(maxsize=64)
def _mobile_template(region: str) -> tuple[int, str]:
    """Country code and national number of phonenumbers' example mobile number for `region`."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None or example.country_code is None:  # pragma: no cover - every locale's region has one
        raise ValueError(f"no example mobile number for {region}")
    return example.country_code, str(example.national_number)


def draw_phone(rng: random.Random, region: str, taken: set[str]) -> str | None:
    """A mobile number valid for `region`, in E.164: the example number's prefix, random digits after.

    Keeping the prefix keeps the number in a range phonenumbers knows as mobile for the country;
    the check below makes sure, and `taken` keeps numbers unique (a shared phone would merge
    two customers)."""
    country_code, national = _mobile_template(region)
    keep = max(len(national) - 6, 1)
    for _ in range(50):
        candidate = national[:keep] + "".join(str(rng.randrange(10)) for _ in range(len(national) - keep))
        number = phonenumbers.parse(f"+{country_code}{candidate}")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if e164 not in taken and phonenumbers.is_valid_number(number):
            taken.add(e164)
            return e164
    return None  # pragma: no cover - a region's mobile range would have to be nearly full


def _local_part(rng: random.Random, first: Name, last: Name) -> str:
    f, l = first.latin, last.latin  # noqa: E741 - first/last initials read best here
    style = rng.random()
    if style < 0.35:
        return f"{f}.{l}"
    if style < 0.5:
        return f"{f}{l}"
    if style < 0.62:
        return f"{f[0]}{l}"
    if style < 0.72:
        return f"{f}_{l}"
    if style < 0.86:
        return f"{f}.{l}{rng.randint(1, 99)}"
    return f"{f}{rng.randint(60, 99) if rng.random() < 0.6 else rng.randint(0, 9):02d}"


def draw_email(rng: random.Random, first: Name, last: Name, taken: set[str]) -> str:
    """A unique, valid address on a reserved domain (a shared email would merge two customers)."""
    domain = rng.choices([d for d, _ in EMAIL_DOMAINS], weights=[w for _, w in EMAIL_DOMAINS])[0]
    local = _local_part(rng, first, last)
    email = f"{local}@{domain}"
    while email in taken:
        email = f"{local}{rng.randint(2, 9999)}@{domain}"
    taken.add(email)
    return email


class PeopleFactory:
    """Draws people one by one, keeping user ids, emails and phone numbers unique."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._user_ids: set[str] = set()
        self._emails: set[str] = set()
        self._phones: set[str] = set()

    def person(self, index: int) -> Person:
        rng = seeded(self.seed, "person", index)
        locale = _pick_locale(rng)
        city = _pick_city(rng, locale)
        first, last = rng.choice(locale.first_names), rng.choice(locale.last_names)
        name = f"{last.written} {first.written}" if locale.family_name_first else f"{first.written} {last.written}"
        user_id = str(rng.randrange(10_000_000, 100_000_000))
        while user_id in self._user_ids:
            user_id = str(rng.randrange(10_000_000, 100_000_000))
        self._user_ids.add(user_id)
        email = draw_email(rng, first, last, self._emails)
        phone = draw_phone(rng, locale.country, self._phones) if rng.random() < PHONE_SHARE else None
        usual_mobile = rng.random() < 0.45
        devices = (draw_device(rng, usual_mobile), draw_device(rng, not usual_mobile))
        return Person(
            user_id=user_id,
            first_name=first.written,
            last_name=last.written,
            name=name,
            email=email,
            phone=phone,
            locale=locale.locale,
            country=locale.country,
            city=city.name,
            timezone=city.timezone,
            devices=devices,
        )

    def visitor(self, index: int) -> Visitor:
        rng = seeded(self.seed, "visitor", index)
        locale = _pick_locale(rng)
        city = _pick_city(rng, locale)
        return Visitor(locale.locale, city.timezone, draw_device(rng, rng.random() < 0.6))


def draw_people(seed: int, customers: int, visitors: int) -> tuple[list[Person], list[Visitor]]:
    factory = PeopleFactory(seed)
    return [factory.person(i) for i in range(customers)], [factory.visitor(i) for i in range(visitors)]
