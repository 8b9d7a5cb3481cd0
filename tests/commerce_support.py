"""Helpers and fixtures for checkout, payments, orders and fulfillment tests, used by
tests/ecom/commerce and tests/storefront_api alike (the root conftest registers the
fixtures as a plugin)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from ecom.commerce.gateways.simulated import SimulatedGateway
from ecom.commerce.models import Cart, CartItem, Order, Payment
from ecom.commerce.payments import RETRY_GRACE
from ecom.db import utcnow
from ecom.extensions import db as _db
from ecom.inventory.models import Inventory
from ecom.notifications.models import OutboxEvent
from storefront_api.security import issue_access_token
from tests.factories import AddressFactory, UserFactory, stocked_variant
from tests.fake_stripe import FakeStripe

ADDRESS = {
    "full_name": "Ada Lovelace",
    "street": "12 Analytical Row",
    "city": "London",
    "state": "",
    "postal_code": "N1 1AA",
    "country": "GB",
    "phone": None,
}


def fill_cart(user, lines) -> Cart:
    """The user's cart holding just ``lines`` [(variant, quantity)], at each variant's price."""
    cart = _db.session.scalar(select(Cart).where(Cart.user_id == user.id))
    if cart is None:
        cart = Cart(user_id=user.id)
        _db.session.add(cart)
        _db.session.flush()
    for line in list(cart.items):
        cart.items.remove(line)
    _db.session.flush()
    for variant, quantity in lines:
        cart.items.append(CartItem(product_id=variant.product_id, variant_id=variant.id, sku=variant.sku,
                                   quantity=quantity, price=variant.price))
    _db.session.flush()
    return cart


def auth(user) -> dict:
    """Bearer headers for ``user``. Also commits what the test set up so far (a savepoint
    under the ``db`` fixture): a request that fails rolls back to there, not further."""
    _db.session.commit()
    token, _ = issue_access_token(user)
    return {"Authorization": f"Bearer {token}"}


def inventory_of(variant) -> Inventory:
    return _db.session.scalar(
        select(Inventory).where(Inventory.variant_id == variant.id).execution_options(populate_existing=True)
    )


def count(model, *where) -> int:
    return _db.session.scalar(select(func.count()).select_from(model).where(*where))


def outbox_types() -> list[str]:
    return list(_db.session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.created_at)))


def statements_during(call) -> tuple[object, list[str]]:
    """``call()``'s result and the SQL statements it sent, whitespace collapsed."""
    from sqlalchemy import event

    seen: list[str] = []
    engine = _db.session.get_bind().engine

    def record(_conn, _cursor, statement, *_args):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        return call(), seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def nothing_created() -> bool:
    return count(Order) == 0 and count(Payment) == 0


@pytest.fixture
def shopper(db):
    return UserFactory()


@pytest.fixture
def address(shopper):
    return AddressFactory(user=shopper)


@pytest.fixture
def variant(db):
    return stocked_variant(quantity=10, price="20.00")


@pytest.fixture
def fake_stripe():
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def stripe_mode(app, fake_stripe, monkeypatch):
    """The app talks to the real ``stripe`` client, pointed at the fake server."""
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_fake_0123456789")
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", fake_stripe.url)
    return fake_stripe


@pytest.fixture
def simulated(app) -> SimulatedGateway:
    return SimulatedGateway(app.config["STRIPE_WEBHOOK_SECRET"])


def money_str(value: str) -> Decimal:
    return Decimal(value)


def retry_gateway_calls_later():
    """The retry job as it runs once the grace period of the calls just recorded is over
    (it leaves younger ones to the request that recorded them)."""
    from workers.periodic import retry_gateway_calls

    return retry_gateway_calls(now=utcnow() + RETRY_GRACE + timedelta(seconds=1))
