"""Audited services write their audit row themselves, for whoever calls them (here: no back office)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ecom.actor import SYSTEM, Actor
from ecom.audit.models import AuditLog
from ecom.catalog import reviews
from ecom.catalog.models import Review
from ecom.errors import Conflict, ValidationFailed
from ecom.identity import services as identity
from ecom.identity.passwords import verify_password
from ecom.inventory import services as stock
from tests.factories import ProductFactory, UserFactory, VariantFactory, stocked_variant

CLI = Actor("cli")


def _audit(db, entity: str) -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id)))


def test_adjust_stock_is_audited_with_its_actor(db):
    variant = stocked_variant(quantity=5)

    stock.adjust_stock(variant, -2, "damage", actor=SYSTEM, note="dropped")

    [entry] = _audit(db, "inventory")
    assert (entry.action, entry.actor, entry.user_id) == ("adjust_stock", "system", None)
    assert entry.entity_id == str(variant.inventory.id)
    assert entry.changes["quantity"] == {"before": 5, "after": 3}
    assert entry.changes["reason"]["after"] == "damage"
    assert entry.changes["delta"]["after"] == -2
    assert entry.changes["note"]["after"] == "dropped"


def test_receive_stock_is_audited_as_a_received_adjustment(db):
    variant = VariantFactory()
    person = UserFactory(role="warehouse")

    stock.receive_stock(variant, 12, actor=Actor.of_user(person))

    [entry] = _audit(db, "inventory")
    assert (entry.actor, entry.user_id) == (person.email, person.id)
    assert entry.changes["quantity"] == {"before": 0, "after": 12}
    assert entry.changes["reason"]["after"] == "received"


@pytest.mark.parametrize(("delta", "reason", "error"), [
    (-9, "correction", Conflict),  # below zero
    (-1, "received", ValidationFailed),  # received stock is never negative
    (-1, "return", ValidationFailed),  # returns are the order flow's
])
def test_a_refused_adjustment_writes_no_audit_row(db, delta, reason, error):
    variant = stocked_variant(quantity=5)

    with pytest.raises(error):
        stock.adjust_stock(variant, delta, reason, actor=SYSTEM)

    assert _audit(db, "inventory") == []
    assert variant.inventory.quantity == 5


def test_role_change_activation_and_password_reset_are_audited(db):
    user = UserFactory(role="customer")

    identity.set_user_role(user, "warehouse", actor=CLI)
    identity.set_users_active([user.id], False, actor=CLI)
    identity.reset_password(user, "a-brand-new-password", actor=CLI)

    entries = _audit(db, "users")
    assert [(e.action, e.actor, e.entity_id) for e in entries] == [
        ("update", "cli", str(user.id)), ("update", "cli", str(user.id)),
        ("reset_password", "cli", str(user.id))]
    assert entries[0].changes == {"role": {"before": "customer", "after": "warehouse"}}
    assert entries[1].changes == {"is_active": {"before": True, "after": False}}
    assert "$2b$" not in str(entries[2].changes)
    assert verify_password("a-brand-new-password", user.hashed_password)


def test_setting_what_is_already_set_writes_nothing(db):
    user = UserFactory(role="warehouse", is_active=True)

    identity.set_user_role(user, "warehouse", actor=CLI)
    identity.set_users_active([user.id], True, actor=CLI)

    assert _audit(db, "users") == []


def test_bulk_activation_audits_each_user_it_changes(db):
    asleep = [UserFactory(is_active=False) for _ in range(2)]
    awake = UserFactory(is_active=True)

    changed = identity.set_users_active([u.id for u in (*asleep, awake)], True, actor=SYSTEM)

    assert changed == 2
    assert all(u.is_active for u in asleep)
    assert sorted(e.entity_id for e in _audit(db, "users")) == sorted(str(u.id) for u in asleep)


def test_review_moderation_is_audited_and_moves_the_rating(db):
    product = ProductFactory()
    bad = reviews.create_review(product, UserFactory(), rating=1)
    reviews.create_review(product, UserFactory(), rating=5)

    reviews.set_review_hidden(bad, True, actor=SYSTEM)

    assert (product.rating_count, str(product.rating_average)) == (1, "5.00")
    [entry] = _audit(db, "reviews")
    assert (entry.actor, entry.entity_id, entry.changes) == (
        "system", str(bad.id), {"is_hidden": {"before": False, "after": True}})


def test_bulk_moderation_changes_audits_and_rates_each_product_once(db):
    first, second = ProductFactory(), ProductFactory()
    rows = [reviews.create_review(p, UserFactory(), rating=r) for p, r in
            ((first, 1), (first, 3), (second, 2))]
    reviews.set_review_hidden(rows[1], True, actor=SYSTEM)  # already hidden: not counted again

    changed = reviews.set_reviews_hidden([r.id for r in rows], True, actor=CLI)

    assert changed == 2
    assert all(db.session.get(Review, r.id).is_hidden for r in rows)
    assert (first.rating_count, second.rating_count) == (0, 0)
    assert [e.actor for e in _audit(db, "reviews")] == ["system", "cli", "cli"]
