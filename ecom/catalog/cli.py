"""Flask CLI: ``seed-demo`` (idempotent demo shop) and ``import-products FILE.csv``."""

from __future__ import annotations

import os
from decimal import Decimal

import click
from flask import Flask
from sqlalchemy import func, select

from ecom import runtime
from ecom.actor import SYSTEM
from ecom.catalog import csv_io, services
from ecom.catalog.models import Category, Product, Variant
from ecom.commerce.demo import seed_demo_orders
from ecom.commerce.models import Order
from ecom.db import money
from ecom.errors import EcomError
from ecom.extensions import db
from ecom.identity.models import Role, User
from ecom.stores.models import Store
from ecom.unit_of_work import committed

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


def register(app: Flask) -> None:
    """Add this area's commands to ``app.cli``."""
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(import_products_command)


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo catalog, stores, staff users and a few orders (safe to run again)."""
    summary = committed(seed_demo)
    click.echo(f"Demo data: {summary}")
    # The address `make run` serves on: the same PORT setting.
    click.echo(f"Back office: http://127.0.0.1:{runtime.settings()['PORT']}/admin/  — sign in with any of:")
    for email, role, _ in DEMO_USERS:
        click.echo(f"  {role.value:<13} {email} / {DEMO_PASSWORD}")


@click.command("import-products")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_products_command(path: str) -> None:
    """Import products from a CSV file in the back office's export format."""
    with open(path, encoding="utf-8-sig") as handle:
        content = handle.read()
    try:
        job = committed(lambda: csv_io.create_import_job(content, filename=os.path.basename(path),
                                                         user_id=None))
    except EcomError as exc:
        raise click.ClickException(str(exc)) from exc
    csv_io.run_import(job, actor=SYSTEM)
    click.echo(f"{job.processed_rows} rows: {job.created_count} created, {job.updated_count} updated, "
               f"{len(job.errors)} with errors.")
    for error in job.errors:
        click.echo(f"  line {error['line']}: {'; '.join(error['errors'])}", err=True)
    if job.status == "failed" or job.errors:
        raise SystemExit(1)


# ---------------------------------------------------------------- seeding

def seed_demo() -> dict:
    """Create whatever of the demo data is missing; returns counts of what exists."""
    users = _seed_users()
    _seed_catalog()
    _seed_stores()
    if db.session.scalar(select(func.count(Order.id))) == 0:
        seed_demo_orders(users["customer@example.com"])
    db.session.flush()
    return {
        "categories": db.session.scalar(select(func.count(Category.id))),
        "products": db.session.scalar(select(func.count(Product.id))),
        "variants": db.session.scalar(select(func.count(Variant.id))),
        "stores": db.session.scalar(select(func.count(Store.id))),
        "orders": db.session.scalar(select(func.count(Order.id))),
    }


def _seed_users() -> dict[str, User]:
    from ecom.identity.passwords import hash_password

    users = {}
    for email, role, name in DEMO_USERS:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, role=role, full_name=name, is_active=True,
                        hashed_password=hash_password(DEMO_PASSWORD))
            db.session.add(user)
            db.session.flush()
        users[email] = user
    return users


def _seed_catalog() -> None:
    from ecom.inventory.services import receive_stock

    for order, (category_name, product_names) in enumerate(DEMO_CATEGORIES.items()):
        category = services.get_category_by_slug(services.slugify(category_name)) or services.create_category(
            name=category_name, description=f"Our {category_name.lower()}", display_order=order)
        for index, product_name in enumerate(product_names):
            slug = services.slugify(product_name)
            if services.get_product_by_slug(slug) is not None:
                continue
            base = Decimal(15 + 7 * index + 11 * order)
            product = services.create_product(
                name=product_name, slug=slug, category=category, base_price=money(base),
                description=f"The {product_name.lower()}: a demo product in {category_name}.",
                featured=index < 2)
            services.set_product_images(product, [f"https://picsum.photos/seed/{slug}/600/600",
                                                  f"https://picsum.photos/seed/{slug}-2/600/600"])
            options = SIZES[category_name][: 2 + (index % 3)]
            for step, option in enumerate(options):
                variant = services.add_variant(
                    product, sku=f"{slug.upper()[:20]}-{services.slugify(option).upper()}",
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
