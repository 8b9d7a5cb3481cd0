"""Every list view renders, for every role that may read it, with no rows, one row and many."""

from __future__ import annotations

import pytest
from flask_admin.contrib.sqla import ModelView

from ecom.actor import SYSTEM
from ecom.catalog.models import Review
from ecom.commerce.demo import create_demo_order
from ecom.identity.notes import add_customer_note
from ecom.inventory.services import adjust_stock
from ecom.notifications.models import Notification
from tests.admin.test_access import READERS
from tests.factories import CategoryFactory, ProductFactory, StoreFactory, UserFactory, stocked_variant

ROLES = ("admin", "merchandiser", "warehouse")


def populate(db, n: int) -> None:
    """``n`` rows of every kind the lists show (0: none beyond the signed-in staff)."""
    for i in range(n):
        customer = UserFactory()
        variant = stocked_variant(quantity=50, price="12.50")
        create_demo_order(customer, [(variant, 1)], status=["paid", "created", "shipped"][i % 3])
        adjust_stock(variant, 3, "received", actor=SYSTEM)
        CategoryFactory()
        StoreFactory()
        db.session.add(Review(product_id=variant.product_id, user_id=customer.id, rating=4, title="Fine"))
        db.session.add(Notification(event_id=f"event-{i}", event_type="ORDER_PAID", channel="email",
                                    recipient=customer.email, subject="Paid", status="sent"))
        add_customer_note(customer, f"Note {i}", actor=SYSTEM)
        ProductFactory()
    db.session.commit()


@pytest.mark.parametrize("rows", [0, 1, 7])
def test_every_list_view_renders_for_each_role(app, db, as_role, staff, rows):
    populate(db, rows)
    model_views = [v for v in app.extensions["backoffice"]._views if isinstance(v, ModelView)]
    assert {v.endpoint for v in model_views} <= set(READERS)
    for role in ROLES:
        client = as_role(role)
        for view in model_views:
            if role not in READERS[view.endpoint]:
                continue
            response = client.get(f"/admin/{view.endpoint}/")
            body = response.get_data(as_text=True)
            assert response.status_code == 200, (view.endpoint, role, rows)
            assert "alert-danger" not in body, (view.endpoint, role, rows)
            first = view.get_query().first() if rows else None
            if first is not None:
                details = client.get(f"/admin/{view.endpoint}/details/?id={first.id}")
                assert details.status_code == 200, (view.endpoint, role, rows)
            # (the staff fixture's users, a customer among them, and the default stock location
            # are rows of these)
            if rows == 0 and view.endpoint not in ("user", "customer", "auditlog", "stocklocation"):
                assert "There are no items in the table." in body, view.endpoint
