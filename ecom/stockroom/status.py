"""Transfer and purchase-order statuses and their allowed transitions."""

from enum import StrEnum


class TransferStatus(StrEnum):
    DRAFT = "draft"  # lines being scanned; no stock has moved
    IN_TRANSIT = "in_transit"  # left the source (transfer_out); counted nowhere as available
    RECEIVED = "received"  # arrived at the destination (transfer_in)
    CANCELLED = "cancelled"  # abandoned as a draft; nothing moved


TRANSFER_ALLOWED: dict[TransferStatus, frozenset[TransferStatus]] = {
    TransferStatus.DRAFT: frozenset({TransferStatus.IN_TRANSIT, TransferStatus.CANCELLED}),
    TransferStatus.IN_TRANSIT: frozenset({TransferStatus.RECEIVED}),
    TransferStatus.RECEIVED: frozenset(),
    TransferStatus.CANCELLED: frozenset(),
}


class PurchaseOrderStatus(StrEnum):
    DRAFT = "draft"  # lines being entered
    ORDERED = "ordered"  # sent to the supplier
    PARTIALLY_RECEIVED = "partially_received"  # some lines short of what was ordered
    RECEIVED = "received"  # every line received in full (or more)
    CANCELLED = "cancelled"  # nothing more will come; what was received stays


PURCHASE_ORDER_ALLOWED: dict[PurchaseOrderStatus, frozenset[PurchaseOrderStatus]] = {
    PurchaseOrderStatus.DRAFT: frozenset({PurchaseOrderStatus.ORDERED, PurchaseOrderStatus.CANCELLED}),
    PurchaseOrderStatus.ORDERED: frozenset({
        PurchaseOrderStatus.PARTIALLY_RECEIVED, PurchaseOrderStatus.RECEIVED, PurchaseOrderStatus.CANCELLED}),
    # Another partial delivery is a change too, written like any other.
    PurchaseOrderStatus.PARTIALLY_RECEIVED: frozenset({
        PurchaseOrderStatus.PARTIALLY_RECEIVED, PurchaseOrderStatus.RECEIVED, PurchaseOrderStatus.CANCELLED}),
    PurchaseOrderStatus.RECEIVED: frozenset(),
    PurchaseOrderStatus.CANCELLED: frozenset(),
}
