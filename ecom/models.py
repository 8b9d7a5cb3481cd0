"""Imports every model so that metadata (and Alembic) sees the whole schema."""

from ecom.audit.models import AuditLog
from ecom.catalog.models import Category, ImportJob, Product, ProductImage, Review, Variant
from ecom.commerce.models import (
    Cart,
    CartItem,
    IdempotencyKey,
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    StripeEvent,
)
from ecom.fulfillment.models import Fulfillment
from ecom.identity.models import Address, CustomerNote, User
from ecom.inventory.models import Inventory, StockMovement, StockReservation
from ecom.notifications.models import Notification, OutboxEvent
from ecom.pricing.models import (
    Promotion,
    PromotionUse,
    ShippingMethod,
    ShippingZone,
    TaxClass,
    TaxRate,
    VoucherCode,
)
from ecom.stores.models import Store

__all__ = [
    "Address", "AuditLog", "Cart", "CartItem", "Category", "CustomerNote", "Fulfillment", "IdempotencyKey",
    "ImportJob", "Inventory", "Notification", "Order", "OrderEvent", "OrderItem", "OutboxEvent",
    "Payment", "Product", "ProductImage", "Promotion", "PromotionUse", "Review", "ShippingMethod",
    "ShippingZone", "StockMovement", "StockReservation", "Store", "StripeEvent", "TaxClass", "TaxRate",
    "User", "Variant", "VoucherCode",
]
