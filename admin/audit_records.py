"""What an audit entry is about, as people know it, and where its record lives.

Entries written since back office 2 carry their label (``audit_log.label``); for older ones,
and for services that name no label, the page's labels are read in one query per kind of
record. Entries of deleted records keep their label and lose only the link.
"""

from __future__ import annotations

from collections import defaultdict

from flask import url_for
from sqlalchemy import select

from ecom.catalog.models import Category, Product, Review, Variant
from ecom.commerce.models import Order
from ecom.extensions import db
from ecom.fulfillment.models import Fulfillment
from ecom.identity.models import User
from ecom.inventory.models import Inventory
from ecom.stores.models import Store

ENTITY_NAMES = {"orders": "Order", "products": "Product", "variants": "SKU", "inventory": "Stock of",
                "users": "User", "fulfillments": "Fulfillment of", "categories": "Category",
                "reviews": "Review of", "stores": "Store"}

# entity -> (query of (id, label) for some ids)
_LABELS = {
    "orders": lambda ids: select(Order.id, Order.order_number).where(Order.id.in_(ids)),
    "products": lambda ids: select(Product.id, Product.name).where(Product.id.in_(ids)),
    "variants": lambda ids: select(Variant.id, Variant.sku).where(Variant.id.in_(ids)),
    "inventory": lambda ids: select(Inventory.id, Variant.sku)
    .join(Variant, Variant.id == Inventory.variant_id).where(Inventory.id.in_(ids)),
    "users": lambda ids: select(User.id, User.email).where(User.id.in_(ids)),
    "fulfillments": lambda ids: select(Fulfillment.id, Fulfillment.order_number)
    .where(Fulfillment.id.in_(ids)),
    "categories": lambda ids: select(Category.id, Category.name).where(Category.id.in_(ids)),
    "reviews": lambda ids: select(Review.id, Product.name).join(Product, Product.id == Review.product_id)
    .where(Review.id.in_(ids)),
    "stores": lambda ids: select(Store.id, Store.name).where(Store.id.in_(ids)),
}

# entity -> the endpoint and argument of its page
_PAGES = {
    "orders": ("order.details_view", "id"),
    "products": ("product.edit_view", "id"),
    "variants": ("variant.details_view", "id"),
    "inventory": ("inventory.details_view", "id"),
    "fulfillments": ("fulfillment.details_view", "id"),
    "categories": ("category.details_view", "id"),
    "reviews": ("review.details_view", "id"),
    "stores": ("store.details_view", "id"),
    "users": ("user.details_view", "id"),
}


def audit_labels(entries) -> dict[tuple[str, str], str]:
    """{(entity, entity_id): label} for the entries without a label of their own."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for entry in entries:
        if not entry.label and entry.entity in _LABELS and entry.entity_id.isdigit():
            wanted[entry.entity].add(int(entry.entity_id))
    labels = {}
    for entity, ids in wanted.items():
        for row_id, label in db.session.execute(_LABELS[entity](sorted(ids))).all():
            labels[(entity, str(row_id))] = str(label)
    return labels


def record_url(entity: str, entity_id: str) -> str | None:
    """The back-office page of the record, or None."""
    if not entity_id.isdigit():
        return None
    page = _PAGES.get(entity)
    return url_for(page[0], **{page[1]: entity_id}) if page else None
