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
from ecom.fulfillment.models import Fulfillment, FulfillmentLine
from ecom.identity.models import Address, CustomerNote, User
from ecom.inventory.models import Inventory, StockLocation, StockMovement, StockReservation
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
from ecom.stockroom.models import PurchaseOrder, PurchaseOrderLine, StockTransfer, StockTransferLine
from ecom.stores.models import Store

__all__ = [
    "Address", "AuditLog", "Cart", "CartItem", "Category", "CustomerNote", "Fulfillment", "FulfillmentLine",
    "IdempotencyKey", "ImportJob", "Inventory", "Notification", "Order", "OrderEvent", "OrderItem",
    "OutboxEvent", "Payment", "Product", "ProductImage", "Promotion", "PromotionUse", "PurchaseOrder",
    "PurchaseOrderLine", "Review", "ShippingMethod", "ShippingZone", "StockLocation", "StockMovement",
    "StockReservation", "StockTransfer", "StockTransferLine", "Store", "StripeEvent", "TaxClass", "TaxRate",
    "User", "Variant", "VoucherCode",
]
