"""The demo shop: catalog, stores, staff users and a few orders, made through each package's
own services (``flask seed-demo``, registered by shop/cli.py).

It lives at the top of ``ecom`` because it composes every package; nothing in the domain
imports it, so the packages stay free of each other (catalog no longer reaches for orders).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from ecom import runtime
from ecom.actor import SYSTEM
from ecom.catalog import services as catalog
from ecom.catalog.models import Category, Product, Variant
from ecom.commerce.demo import seed_demo_orders
from ecom.commerce.models import Order
from ecom.config import PRODUCTION
from ecom.db import money
from ecom.errors import PermissionDenied
from ecom.extensions import db
from ecom.identity.models import Role, User
from ecom.identity.services import create_user, find_user_by_email
from ecom.inventory.services import receive_stock
from ecom.pricing.demo import DEMO_VOUCHER, seed_pricing
from ecom.stores.models import Store

DEMO_PASSWORD = "demo-password-123"
DEMO_USERS = [
    ("admin@example.com", Role.ADMIN, "Ada Admin"),
    ("merch@example.com", Role.MERCHANDISER, "Max Merchandiser"),
    ("warehouse@example.com", Role.WAREHOUSE, "Wanda Warehouse"),
    ("customer@example.com", Role.CUSTOMER, "Cora Customer"),
]
DEMO_CATEGORIES = {
    "Shoes": ["Trail Runner", "Road Racer", "Court Classic", "Canvas Low", "Hiking Boot", "Slip-On",
              "Chelsea Boot", "Sandal"],
    "Jackets": ["Rain Shell", "Down Puffer", "Fleece Zip", "Denim Jacket", "Softshell", "Windbreaker",
                "Parka", "Bomber"],
    "Bags": ["Day Pack", "Tote", "Messenger", "Duffel", "Sling", "Laptop Sleeve", "Roll-Top", "Hip Pack"],
    "Kitchen": ["Chef Knife", "Cast Iron Pan", "Pour-Over Set", "Cutting Board", "Dutch Oven",
                "Spice Rack", "Kettle", "Mixing Bowls"],
    "Books": ["Field Guide", "Cookbook", "Atlas", "Sketchbook", "Travel Journal", "Poetry Anthology",
              "Star Chart", "Garden Almanac"],
}
SIZES = {"Shoes": ["40", "41", "42", "43"], "Jackets": ["S", "M", "L", "XL"],
         "Bags": ["Black", "Olive", "Sand"],
         "Kitchen": ["Standard", "Large"], "Books": ["Paperback", "Hardcover"]}
ATTRIBUTE = {"Shoes": "size", "Jackets": "size", "Bags": "colour", "Kitchen": "size", "Books": "format"}
DEMO_STORES = [
    ("Shop London", "1 Regent Street", "London", "GB", 51.5101, -0.1340),
    ("Shop Paris", "10 Rue de Rivoli", "Paris", "FR", 48.8556, 2.3600),
    ("Shop Berlin", "5 Friedrichstraße", "Berlin", "DE", 52.5200, 13.3880),
    ("Shop New York", "350 5th Avenue", "New York", "US", 40.7484, -73.9857),
    ("Shop Tokyo", "1-1 Marunouchi", "Tokyo", "JP", 35.6812, 139.7671),
]


def seed_demo() -> dict:
    """Create whatever of the demo data is missing (flushes only); returns counts of what exists.

    Raises PermissionDenied in production: the demo staff sign in with a published password."""
    if runtime.settings()["ENV_NAME"] == PRODUCTION:
        raise PermissionDenied(
            "seed-demo does not run in production: its users sign in with a published password.")
    users = _seed_users()
    _seed_catalog()
    _seed_stores()
    seed_pricing(stores=db.session.scalars(select(Store).order_by(Store.id)).all(),
                 categories={c.slug: c for c in db.session.scalars(select(Category))})
    if db.session.scalar(select(func.count(Order.id))) == 0:
        seed_demo_orders(users["customer@example.com"])
    db.session.flush()
    return {
        "categories": db.session.scalar(select(func.count(Category.id))),
        "products": db.session.scalar(select(func.count(Product.id))),
        "variants": db.session.scalar(select(func.count(Variant.id))),
        "stores": db.session.scalar(select(func.count(Store.id))),
        "orders": db.session.scalar(select(func.count(Order.id))),
        "voucher": DEMO_VOUCHER,
    }


def _seed_users() -> dict[str, User]:
    # Through identity's one rule for new accounts (normalised email, password policy, audit).
    return {email: find_user_by_email(email)
            or create_user(email, DEMO_PASSWORD, full_name=name, role=role, actor=SYSTEM)
            for email, role, name in DEMO_USERS}


def _seed_catalog() -> None:
    for order, (category_name, product_names) in enumerate(DEMO_CATEGORIES.items()):
        category = catalog.get_category_by_slug(catalog.slugify(category_name)) or catalog.create_category(
            name=category_name, description=f"Our {category_name.lower()}", display_order=order)
        for index, product_name in enumerate(product_names):
            slug = catalog.slugify(product_name)
            if catalog.get_product_by_slug(slug) is not None:
                continue
            base = Decimal(15 + 7 * index + 11 * order)
            product = catalog.create_product(
                name=product_name, slug=slug, category=category, base_price=money(base),
                description=f"The {product_name.lower()}: a demo product in {category_name}.",
                featured=index < 2)
            catalog.set_product_images(product, [f"https://picsum.photos/seed/{slug}/600/600",
                                                 f"https://picsum.photos/seed/{slug}-2/600/600"])
            options = SIZES[category_name][: 2 + (index % 3)]
            for step, option in enumerate(options):
                variant = catalog.add_variant(
                    product, sku=f"{slug.upper()[:20]}-{catalog.slugify(option).upper()}",
                    name=option, price=money(base + step * 2), attributes={ATTRIBUTE[category_name]: option},
                    weight=Decimal("0.500"))
                # A couple of variants start low so the dashboard has something to say.
                receive_stock(variant, 3 if (index + step) % 7 == 0 else 40, actor=SYSTEM, note="demo stock")


def _seed_stores() -> None:
    for name, address, city, country, lat, lng in DEMO_STORES:
        if db.session.scalar(select(Store.id).where(Store.name == name)) is None:
            db.session.add(Store(name=name, address=address, city=city, country=country, latitude=lat,
                                 longitude=lng, opening_hours={"mon-sat": "09:00-19:00"}))
    db.session.flush()
