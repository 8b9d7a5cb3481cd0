"""Whether a catalog record may be deleted, and why not: history refers to it.

An ordered product (or a variant of one) is named by order lines, reservations and the stock
ledger; deleting it would orphan or refuse them. One with units on hand would take its stock
ledger with it. A category with products would leave them
uncategorised without a word. Each function returns None when deleting is fine, else a
``Refusal``: the reason in the words of the person trying, and the way out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from ecom.catalog.models import Category, Product, Variant
from ecom.commerce.models import OrderItem
from ecom.extensions import db
from ecom.inventory.models import Inventory, StockReservation


@dataclass(frozen=True)
class Refusal:
    message: str
    way_out: str  # "deactivate" or "move_products"


def product_delete_refusal(product: Product) -> Refusal | None:
    variant_ids = select(Variant.id).where(Variant.product_id == product.id)
    orders = db.session.scalar(
        select(func.count(func.distinct(OrderItem.order_id))).where(
            (OrderItem.product_id == product.id) | OrderItem.variant_id.in_(variant_ids))) or 0
    reserved = db.session.scalar(
        select(func.count(StockReservation.id)).where(StockReservation.variant_id.in_(variant_ids))) or 0
    if orders or reserved:
        return Refusal(
            f"{product.name} cannot be deleted: {orders} order(s) include it, and orders keep what was "
            "sold. Deactivate it instead: it leaves the shop at once and its history stays intact.",
            "deactivate")
    on_hand = _units_on_hand(variant_ids)
    if on_hand:
        return Refusal(
            f"{product.name} cannot be deleted: {on_hand} unit(s) are in stock, and deleting it would "
            "erase their stock ledger. Deactivate it instead, or book the stock out first.", "deactivate")
    return None


def _units_on_hand(variant_ids) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(Inventory.quantity), 0))
                                 .where(Inventory.variant_id.in_(variant_ids))) or 0)


def variant_delete_refusal(variant: Variant) -> Refusal | None:
    orders = db.session.scalar(select(func.count(func.distinct(OrderItem.order_id)))
                               .where(OrderItem.variant_id == variant.id)) or 0
    reserved = db.session.scalar(select(func.count(StockReservation.id))
                                 .where(StockReservation.variant_id == variant.id)) or 0
    if orders or reserved:
        return Refusal(
            f"{variant.sku} cannot be deleted: {orders} order(s) include it. Deactivate it instead: "
            "it can no longer be bought and its history stays intact.", "deactivate")
    on_hand = _units_on_hand([variant.id])
    if on_hand:
        return Refusal(
            f"{variant.sku} cannot be deleted: {on_hand} unit(s) are in stock. Deactivate it instead, "
            "or book the stock out first.", "deactivate")
    return None


def category_delete_refusal(category: Category) -> Refusal | None:
    products = db.session.scalar(select(func.count(Product.id))
                                 .where(Product.category_id == category.id)) or 0
    children = db.session.scalar(select(func.count(Category.id))
                                 .where(Category.parent_id == category.id)) or 0
    if not products and not children:
        return None
    parts = []
    if products:
        parts.append(f"{products} product(s)")
    if children:
        parts.append(f"{children} subcategory(ies)")
    return Refusal(
        f"{category.name} cannot be deleted: it holds {' and '.join(parts)}. Move them to another "
        "category first (the product list below is filtered to this category).", "move_products")


def deactivate_variant(variant: Variant, *, actor) -> bool:
    """The way out for a variant that was ordered: no longer sold, history intact. Audited;
    the product's price range follows. False when it was inactive already."""
    from ecom.audit.services import record_change
    from ecom.catalog.services import refresh_price_range

    if not variant.is_active:
        return False
    variant.is_active = False
    db.session.flush()
    refresh_price_range(variant.product)
    record_change(actor, "update", "variants", variant.id, {"is_active": True}, {"is_active": False},
                  label=variant.sku)
    return True
