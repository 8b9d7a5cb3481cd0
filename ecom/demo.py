"""The demo shop: catalog, stores, staff users and a few orders, made through each package's
own services (``flask seed-demo``, registered by shop/cli.py).

It lives at the top of ``ecom`` because it composes every package; nothing in the domain
imports it, so the packages stay free of each other (catalog no longer reaches for orders).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from ecom import runtime
from ecom.actor import SYSTEM, Actor
from ecom.catalog import services as catalog
from ecom.catalog.models import Category, Product, Variant
from ecom.commerce.demo import seed_demo_orders, seed_demo_returns
from ecom.commerce.models import Order, Return
from ecom.commerce.status import OrderStatus
from ecom.config import PRODUCTION
from ecom.db import money
from ecom.errors import PermissionDenied
from ecom.extensions import db
from ecom.identity.models import Role, User
from ecom.identity.services import create_user, find_user_by_email
from ecom.inventory.models import LocationKind, StockLocation
from ecom.inventory.services import default_location, receive_stock
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
# A second level of the category tree: (subcategory, its parent) for these products.
SUBCATEGORIES = {
    "Hiking Boot": ("Boots", "Shoes"), "Chelsea Boot": ("Boots", "Shoes"),
    "Trail Runner": ("Running", "Shoes"), "Road Racer": ("Running", "Shoes"),
}
# (Jackets keep no subcategory: the demo sale, ecom.pricing.demo, names the jackets category,
# and a promotion's categories are exact, subcategories not included.)
# Shoes and jackets come in a colour each (a facet besides size).
COLOURS = {"Shoes": ["Black", "Brown", "Grey"], "Jackets": ["Navy", "Olive", "Black"]}
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
    _seed_stores()
    _seed_catalog(_seed_locations())
    seed_pricing(stores=db.session.scalars(select(Store).order_by(Store.id)).all(),
                 categories={c.slug: c for c in db.session.scalars(select(Category))})
    if db.session.scalar(select(func.count(Order.id))) == 0:
        seed_demo_orders(users["customer@example.com"])
    # Apart from the orders, so a demo database seeded before returns existed gets its queue too.
    if db.session.scalar(select(func.count(Return.id))) == 0:
        seed_demo_returns(users["customer@example.com"], admin=Actor.of_user(users["admin@example.com"]),
                          warehouse=Actor.of_user(users["warehouse@example.com"]))
    db.session.flush()
    return {
        "categories": db.session.scalar(select(func.count(Category.id))),
        "products": db.session.scalar(select(func.count(Product.id))),
        "variants": db.session.scalar(select(func.count(Variant.id))),
        "stores": db.session.scalar(select(func.count(Store.id))),
        "stock_locations": db.session.scalar(select(func.count(StockLocation.id))),
        "orders": db.session.scalar(select(func.count(Order.id))),
        "returns": db.session.scalar(select(func.count(Return.id))),
        "voucher": DEMO_VOUCHER,
        "returnable_order": returnable_demo_order(users["customer@example.com"]),
    }


def returnable_demo_order(customer: User) -> str | None:
    """The number of the customer's newest delivered order with nothing asked back yet (the
    one to try a return with), if any."""
    return db.session.scalar(
        select(Order.order_number)
        .where(Order.user_id == customer.id, Order.status == OrderStatus.DELIVERED,
               ~select(Return.id).where(Return.order_id == Order.id).exists())
        .order_by(Order.created_at.desc(), Order.id.desc()).limit(1))


def _seed_users() -> dict[str, User]:
    # Through identity's one rule for new accounts (normalised email, password policy, audit).
    return {email: find_user_by_email(email)
            or create_user(email, DEMO_PASSWORD, full_name=name, role=role, actor=SYSTEM)
            for email, role, name in DEMO_USERS}


def _seed_locations() -> dict[str, list[StockLocation]]:
    """Two warehouses (the default one and a second that ships after it) and a click & collect
    location per store."""
    main = default_location()
    east = db.session.scalar(select(StockLocation).where(StockLocation.code == "EAST"))
    if east is None:
        east = StockLocation(code="EAST", name="East warehouse", kind=LocationKind.WAREHOUSE,
                             address="Unit 4, Riverside Park, Leeds", ships_orders=True, priority=20)
        db.session.add(east)
    shelves = []
    for store in db.session.scalars(select(Store).order_by(Store.id)):
        shelf = db.session.scalar(select(StockLocation).where(StockLocation.store_id == store.id))
        if shelf is None:
            shelf = StockLocation(code=f"STORE-{store.id}", name=f"{store.name} stock room",
                                  kind=LocationKind.STORE, store_id=store.id,
                                  address=f"{store.address}, {store.city}", ships_orders=False,
                                  accepts_pickup=True, priority=100)
            db.session.add(shelf)
        shelves.append(shelf)
    db.session.flush()
    return {"warehouses": [main, east], "stores": shelves}


def _seed_catalog(locations: dict[str, list[StockLocation]]) -> None:
    main, east = locations["warehouses"]
    for order, (category_name, product_names) in enumerate(DEMO_CATEGORIES.items()):
        category = catalog.get_category_by_slug(catalog.slugify(category_name)) or catalog.create_category(
            name=category_name, description=f"Our {category_name.lower()}", display_order=order)
        for index, product_name in enumerate(product_names):
            slug = catalog.slugify(product_name)
            if catalog.get_product_by_slug(slug) is not None:
                continue
            base = Decimal(15 + 7 * index + 11 * order)
            home = category
            if product_name in SUBCATEGORIES:
                name, _ = SUBCATEGORIES[product_name]
                home = catalog.get_category_by_slug(catalog.slugify(name)) or catalog.create_category(
                    name=name, parent=category, description=f"{name}: part of {category_name.lower()}")
            product = catalog.create_product(
                name=product_name, slug=slug, category=home, base_price=money(base),
                description=f"The {product_name.lower()}: a demo product in {category_name}.",
                featured=index < 2)
            catalog.set_product_images(product, [f"https://picsum.photos/seed/{slug}/600/600",
                                                 f"https://picsum.photos/seed/{slug}-2/600/600"])
            options = SIZES[category_name][: 2 + (index % 3)]
            colour = COLOURS[category_name][index % 3] if category_name in COLOURS else None
            for step, option in enumerate(options):
                attributes = {ATTRIBUTE[category_name]: option, **({"colour": colour} if colour else {})}
                variant = catalog.add_variant(
                    product, sku=f"{slug.upper()[:20]}-{catalog.slugify(option).upper()}",
                    name=option, price=money(base + step * 2), attributes=attributes,
                    weight=Decimal("0.500"))
                # A couple of variants start low so the dashboard has something to say.
                receive_stock(variant, 3 if (index + step) % 7 == 0 else 40, actor=SYSTEM, note="demo stock",
                              location=main)
                # The second warehouse holds some of the range (orders split when the first runs
                # out), and the featured products sit on every store's shelves for click & collect.
                if (index + step) % 2 == 0:
                    receive_stock(variant, 15, actor=SYSTEM, note="demo stock", location=east)
                if index < 2:
                    for shelf in locations["stores"]:
                        receive_stock(variant, 2 + step, actor=SYSTEM, note="demo stock", location=shelf)


def _seed_stores() -> None:
    for name, address, city, country, lat, lng in DEMO_STORES:
        if db.session.scalar(select(Store.id).where(Store.name == name)) is None:
            db.session.add(Store(name=name, address=address, city=city, country=country, latitude=lat,
                                 longitude=lng, opening_hours={"mon-sat": "09:00-19:00"}))
    db.session.flush()
