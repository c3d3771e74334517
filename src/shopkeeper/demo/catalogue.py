"""The demo shop's product catalogue: ~200 products in a handful of categories, with popularity.

Built from committed base items and variants, without randomness and independent of `--seed`: a
shop has one catalogue, and order payloads stay comparable between demo databases. Popularity
follows a Zipf law so a few bestsellers dominate, as in real shops.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

CURRENCY = "EUR"  # one shop currency keeps revenue comparable for RFM and CLV
SITE = "https://shop.example.com"  # a reserved domain: demo links never reach a real site


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    sku: str
    name: str
    category: str
    price: float
    slug: str
    popularity: float  # relative chance of being looked at

    @property
    def url(self) -> str:
        return f"{SITE}/p/{self.slug}"

    def as_properties(self) -> dict[str, str | float]:
        """The product fields of Segment's e-commerce spec."""
        return {
            "product_id": self.product_id,
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "price": self.price,
        }


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    code: str  # SKU prefix
    items: tuple[tuple[str, float], ...]  # (base name, base price)
    variants: tuple[tuple[str, float], ...]  # (variant, price factor)
    search_terms: tuple[str, ...]

    @property
    def slug(self) -> str:
        return slugify(self.name)


CATEGORIES: tuple[Category, ...] = (
    Category(
        "Coffee",
        "COF",
        (
            ("House Espresso", 9.5),
            ("Ethiopia Yirgacheffe", 12.9),
            ("Colombia Huila", 11.5),
            ("Brazil Cerrado", 10.5),
            ("Kenya AA", 13.9),
            ("Decaf Swiss Water", 11.0),
            ("Guatemala Antigua", 12.0),
            ("Sumatra Mandheling", 12.5),
            ("Cold Brew Blend", 10.9),
            ("Rwanda Nyamasheke", 13.5),
            ("Morning Filter Blend", 9.9),
        ),
        (("250 g, whole bean", 1.0), ("250 g, ground", 1.0), ("1 kg, whole bean", 3.4)),
        ("espresso", "coffee beans", "decaf", "single origin", "cold brew", "ethiopia", "filter coffee"),
    ),
    Category(
        "Tea",
        "TEA",
        (
            ("Earl Grey", 7.5),
            ("Sencha", 9.9),
            ("Darjeeling First Flush", 14.5),
            ("Rooibos Vanilla", 6.9),
            ("Chai Spice", 7.9),
            ("Jasmine Pearls", 15.9),
            ("Peppermint", 5.9),
            ("Assam Breakfast", 6.9),
            ("Lapsang Souchong", 9.5),
            ("Chamomile Blossom", 6.5),
        ),
        (("100 g tin", 1.0), ("250 g refill", 2.1), ("20 tea bags", 0.7)),
        ("green tea", "earl grey", "herbal tea", "chai", "breakfast tea", "loose leaf"),
    ),
    Category(
        "Brewing",
        "BRW",
        (
            ("Pour-Over Dripper", 24.0),
            ("Gooseneck Kettle", 59.0),
            ("Burr Grinder", 129.0),
            ("Hand Grinder", 69.0),
            ("French Press", 34.0),
            ("Moka Pot", 39.0),
            ("Milk Frother", 29.0),
            ("Cold Brew Bottle", 27.0),
            ("Coffee Scale", 45.0),
            ("Immersion Brewer", 36.0),
            ("Espresso Tamper", 32.0),
            ("Milk Pitcher", 19.0),
        ),
        (("Matte Black", 1.0), ("Brushed Steel", 1.15)),
        ("grinder", "kettle", "french press", "moka pot", "scale", "frother", "pour over"),
    ),
    Category(
        "Tableware",
        "TBL",
        (
            ("Stoneware Mug", 16.0),
            ("Double-Wall Glass", 18.0),
            ("Espresso Cup Set", 32.0),
            ("Travel Tumbler", 26.0),
            ("Serving Tray", 38.0),
            ("Teapot", 44.0),
            ("Sugar Jar", 14.0),
            ("Cappuccino Cup", 15.0),
            ("Tea Cup and Saucer", 17.0),
            ("Storage Canister", 22.0),
        ),
        (("Sand", 1.0), ("Charcoal", 1.0), ("Sage", 1.05)),
        ("mug", "cups", "teapot", "tumbler", "glass", "canister"),
    ),
    Category(
        "Apparel",
        "APP",
        (
            ("Barista Apron", 42.0),
            ("Logo T-Shirt", 25.0),
            ("Roastery Hoodie", 59.0),
            ("Knit Beanie", 22.0),
            ("Canvas Tote Bag", 18.0),
            ("Cotton Socks", 12.0),
            ("Linen Tea Towel", 12.0),
        ),
        (("Navy", 1.0), ("Olive", 1.0), ("Rust", 1.0), ("Oat", 1.0)),
        ("apron", "t-shirt", "hoodie", "tote bag", "beanie", "socks"),
    ),
    Category(
        "Books",
        "BOK",
        (
            ("The Home Barista", 29.0),
            ("A Year of Tea", 24.0),
            ("Origins: Coffee Farms of the World", 39.0),
            ("Latte Art Basics", 19.0),
            ("The Tea Atlas", 34.0),
            ("Baking for Coffee Lovers", 27.0),
            ("The Science of Extraction", 32.0),
            ("Slow Mornings", 22.0),
            ("Tea Ceremonies of Asia", 36.0),
            ("The Roaster's Notebook", 26.0),
        ),
        (("Hardcover", 1.0), ("Paperback", 0.65)),
        ("book", "latte art", "coffee book", "recipes", "tea book"),
    ),
    Category(
        "Pantry",
        "PAN",
        (
            ("Vanilla Syrup", 7.9),
            ("Caramel Syrup", 7.9),
            ("Hazelnut Syrup", 7.9),
            ("Almond Biscotti", 5.9),
            ("Dark Chocolate Bar", 4.5),
            ("Oat Drink Barista Edition", 2.9),
            ("Cinnamon Cookies", 4.9),
            ("Wildflower Honey", 8.9),
            ("Drinking Chocolate", 9.5),
            ("Stroopwafels", 5.5),
        ),
        (("single", 1.0), ("pack of 3", 2.7)),
        ("syrup", "biscotti", "chocolate", "oat milk", "honey", "cookies"),
    ),
    Category(
        "Gifts",
        "GFT",
        (
            ("Tasting Box", 34.0),
            ("Tea Discovery Set", 29.0),
            ("Brew Starter Kit", 79.0),
            ("Gift Card", 25.0),
            ("Advent Calendar", 45.0),
            ("Coffee Subscription, 3 months", 99.0),
            ("Tea Subscription, 3 months", 79.0),
            ("Mug and Beans Set", 32.0),
        ),
        (("Classic", 1.0), ("Deluxe", 1.6)),
        ("gift", "gift card", "tasting set", "advent calendar", "subscription"),
    ),
)

_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")


def _price(base: float, factor: float) -> float:
    """Prices end in .40 or .90, like a real price list."""
    return round(max(round(base * factor * 2) / 2 - 0.1, 0.9), 2)


def _rank_key(product_id: str) -> int:
    """A fixed pseudo-random order (a hash, not `random`, so it never changes between versions)."""
    return int.from_bytes(hashlib.sha256(product_id.encode()).digest()[:8], "big")


def build_catalogue() -> tuple[Product, ...]:
    """Every item in every variant; popularity by Zipf's law over a fixed shuffled ranking."""
    products: list[Product] = []
    for category in CATEGORIES:
        for item_no, (item, base) in enumerate(category.items, start=1):
            for variant_no, (variant, factor) in enumerate(category.variants, start=1):
                name = f"{item}, {variant}" if category.name in ("Coffee", "Pantry") else f"{item} – {variant}"
                products.append(
                    Product(
                        product_id=f"{category.code.lower()}-{item_no:02d}{variant_no}",
                        sku=f"{category.code}-{item_no:03d}-{variant_no:02d}",
                        name=name,
                        category=category.name,
                        price=_price(base, factor),
                        slug=slugify(name),
                        popularity=0.0,
                    )
                )
    ranked = sorted(products, key=lambda p: _rank_key(p.product_id))
    rank = {p.product_id: r for r, p in enumerate(ranked, start=1)}
    return tuple(replace(p, popularity=round(1.0 / rank[p.product_id] ** 0.8, 6)) for p in products)


CATALOGUE: tuple[Product, ...] = build_catalogue()
BY_CATEGORY: dict[str, tuple[Product, ...]] = {
    c.name: tuple(p for p in CATALOGUE if p.category == c.name) for c in CATEGORIES
}
