"""factory_boy factories bound to the test session."""

from __future__ import annotations

from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory

from ecom.extensions import db
from ecom.models import (
    Address,
    Category,
    Inventory,
    Product,
    ProductImage,
    StockLocation,
    Store,
    User,
    Variant,
)

TEST_PASSWORD = "correct-horse-battery"


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class UserFactory(Base):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    role = "customer"
    is_active = True

    @factory.lazy_attribute
    def hashed_password(self):
        from ecom.identity.passwords import hash_password

        return _cached_hash(hash_password)


_HASH: list[str] = []


def _cached_hash(hash_password) -> str:
    # bcrypt is deliberately slow; one hash of the test password serves every user.
    if not _HASH:
        _HASH.append(hash_password(TEST_PASSWORD))
    return _HASH[0]


class AddressFactory(Base):
    class Meta:
        model = Address

    user = factory.SubFactory(UserFactory)
    address_type = "shipping"
    full_name = factory.Faker("name")
    street = "1 Main Street"
    city = "Springfield"
    state = "IL"
    postal_code = "62701"
    country = "US"
    is_default = False


class CategoryFactory(Base):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    description = "A category"


class ProductFactory(Base):
    class Meta:
        model = Product

    category = factory.SubFactory(CategoryFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    description = "A fine product"
    base_price = Decimal("20.00")
    min_price = Decimal("20.00")
    max_price = Decimal("20.00")
    is_active = True
    featured = False


class ProductImageFactory(Base):
    class Meta:
        model = ProductImage

    product = factory.SubFactory(ProductFactory)
    url = factory.Sequence(lambda n: f"https://img.example.com/{n}.jpg")
    alt_text = "photo"
    is_primary = True


class VariantFactory(Base):
    class Meta:
        model = Variant

    product = factory.SubFactory(ProductFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = "Default"
    price = Decimal("20.00")
    attributes = factory.LazyFunction(dict)


class InventoryFactory(Base):
    class Meta:
        model = Inventory

    variant = factory.SubFactory(VariantFactory)
    location = factory.LazyFunction(lambda: _default_location())
    quantity = 10
    reserved = 0
    low_stock_threshold = 2


def _default_location():
    from ecom.inventory.services import default_location

    return default_location()


class StockLocationFactory(Base):
    class Meta:
        model = StockLocation

    code = factory.Sequence(lambda n: f"LOC{n}")
    name = factory.Sequence(lambda n: f"Location {n}")
    kind = "warehouse"
    ships_orders = True
    accepts_pickup = False
    priority = factory.Sequence(lambda n: 100 + n)
    is_active = True


def stocked_variant(quantity: int = 10, price: str = "20.00", **kwargs) -> Variant:
    """A variant of an active product with ``quantity`` units on hand."""
    variant = VariantFactory(price=Decimal(price), **kwargs)
    InventoryFactory(variant=variant, quantity=quantity)
    return variant


class StoreFactory(Base):
    class Meta:
        model = Store

    name = factory.Sequence(lambda n: f"Store {n}")
    address = "1 High Street"
    city = "London"
    country = "GB"
    latitude = 51.5074
    longitude = -0.1278
    is_active = True


def make_order(user=None, lines=(), status: str = "created", number: str | None = None):
    """An order with ``lines`` of (variant, quantity), totals consistent, nothing reserved."""
    from ecom.commerce.models import Order, OrderItem
    from ecom.db import money

    user = user or UserFactory()
    items = [
        OrderItem(product_id=v.product_id, variant_id=v.id, sku=v.sku, product_name=v.product.name,
                  variant_name=v.name, quantity=q, price=v.price, line_total=money(v.price * q))
        for v, q in lines
    ]
    subtotal = money(sum((i.line_total for i in items), Decimal("0")))
    address = {"full_name": user.full_name, "street": "1 Main St", "city": "Springfield",
               "state": "IL", "postal_code": "62701", "country": "US", "phone": None}
    _ORDER_SEQ.append(1)
    order = Order(
        user_id=user.id, email=user.email, order_number=number or f"ORD-TEST-{len(_ORDER_SEQ):06d}",
        status=status, subtotal=subtotal, tax=Decimal("0.00"), shipping_cost=Decimal("0.00"),
        total=subtotal, currency="usd", shipping_address=address, billing_address=address,
        items=items,
    )
    db.session.add(order)
    db.session.flush()
    return order


_ORDER_SEQ: list[int] = []
