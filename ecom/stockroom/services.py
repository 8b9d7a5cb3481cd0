"""Transfers between locations and purchase orders from suppliers.

Both are built line by line the way a clerk with a barcode scanner works:
scan (or type) a SKU, enter a quantity, next line; scanning a SKU already on
the document adds to its line. Every status change goes through ``_change``
(the state machine's ``check_transition`` first, then the status, its stamp
and an audit row), and every unit that moves is a ledger movement written by
``ecom.inventory.services`` under its row locks (fixed order), so the ledger
still sums to on-hand at every location:

- a transfer sent takes its units out of the source (``transfer_out``; only
  units available there, never those reserved for orders); while in transit
  they are counted nowhere; received, they go into the destination
  (``transfer_in``);
- a purchase order receives any quantity per line, partial or more than ordered
  (the surplus is booked and reported as a warning), as ``received``
  movements at its destination.

Each operation locks its document first (SELECT ... FOR UPDATE), then stock
rows, so two clerks sending the same transfer move its units once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.catalog.models import Variant
from ecom.commerce.orders import check_transition
from ecom.db import locked_row, utcnow
from ecom.errors import Conflict, NotFound, ValidationFailed
from ecom.extensions import db
from ecom.inventory.models import MovementReason, StockLocation
from ecom.inventory.services import put_in, take_out
from ecom.stockroom.models import PurchaseOrder, PurchaseOrderLine, StockTransfer, StockTransferLine
from ecom.stockroom.status import (
    PURCHASE_ORDER_ALLOWED,
    TRANSFER_ALLOWED,
    PurchaseOrderStatus,
    TransferStatus,
)

MAX_UNITS = 1_000_000  # per scanned line: a typo of a barcode into the quantity field stops here

TRANSFER_STAMPS = {TransferStatus.IN_TRANSIT: "sent_at", TransferStatus.RECEIVED: "received_at",
                   TransferStatus.CANCELLED: "cancelled_at"}
PURCHASE_ORDER_STAMPS = {PurchaseOrderStatus.ORDERED: "ordered_at",
                         PurchaseOrderStatus.RECEIVED: "received_at",
                         PurchaseOrderStatus.CANCELLED: "cancelled_at"}


def _change(document, target, *, allowed, stamps, kind: str, actor: Actor, table: str) -> None:
    """The one status change of transfers and purchase orders. Raises InvalidTransition."""
    current = type(target)(document.status)
    check_transition(allowed, kind, current, target)
    document.status = target
    if target in stamps:
        setattr(document, stamps[target], utcnow())
    record_change(actor, str(target), table, document.id, {"status": str(current)}, {"status": str(target)})


def _units(quantity, *, field_name: str = "quantity") -> int:
    """A positive whole number of units. Raises ValidationFailed."""
    if isinstance(quantity, str) and quantity.strip().lstrip("+").isdigit():
        quantity = int(quantity.strip())
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity <= MAX_UNITS:
        raise ValidationFailed(f"The quantity must be a whole number from 1 to {MAX_UNITS}.",
                               {field_name: ["Must be a positive whole number."]})
    return quantity


def _variant(sku: str) -> Variant:
    sku = (sku or "").strip()
    if not sku:
        raise ValidationFailed("Scan or type a SKU.", {"sku": ["Required."]})
    variant = db.session.scalar(select(Variant).where(Variant.sku == sku))
    if variant is None:
        raise NotFound(f"No variant with SKU '{sku}'.")
    return variant


def _location(location_or_id, what: str) -> StockLocation:
    location = (location_or_id if isinstance(location_or_id, StockLocation)
                else db.session.get(StockLocation, location_or_id) if location_or_id else None)
    if location is None:
        raise ValidationFailed(f"Choose the {what} location.", {what: ["Unknown location."]})
    if not location.is_active:
        raise ValidationFailed(f"{location.name} is inactive.", {what: ["Inactive location."]})
    return location


# --- transfers ---------------------------------------------------------------


def lock_transfer(transfer_id: int) -> StockTransfer:
    """The transfer with a row lock and fresh values. Raises NotFound."""
    transfer = locked_row(StockTransfer, transfer_id)
    if transfer is None:
        raise NotFound("Transfer not found.")
    return transfer


def create_transfer(source, destination, *, actor: Actor, note: str = "") -> StockTransfer:
    """A draft transfer between two active locations. Raises ValidationFailed."""
    source, destination = _location(source, "source"), _location(destination, "destination")
    if source.id == destination.id:
        raise ValidationFailed("A transfer goes between two different locations.",
                               {"destination": ["Same as the source."]})
    transfer = StockTransfer(source_location_id=source.id, destination_location_id=destination.id,
                             status=TransferStatus.DRAFT, note=note or "", created_by_id=actor.user_id)
    db.session.add(transfer)
    db.session.flush()
    record_change(actor, "create", "stock_transfers", transfer.id, None,
                  {"source": source.code, "destination": destination.code})
    return transfer


def add_transfer_line(transfer: StockTransfer, sku: str, quantity, *, actor: Actor) -> StockTransferLine:
    """Scan a SKU onto a draft transfer (adds to its line if already there).
    Raises ValidationFailed, NotFound (unknown SKU), Conflict (no longer a draft)."""
    units = _units(quantity)
    variant = _variant(sku)
    transfer = lock_transfer(transfer.id)
    if transfer.status != TransferStatus.DRAFT:
        raise Conflict(f"{transfer.number} is {transfer.status}: lines can only change on a draft.")
    line = next((line for line in transfer.lines if line.variant_id == variant.id), None)
    if line is None:
        line = StockTransferLine(variant_id=variant.id, quantity=0)
        transfer.lines.append(line)
    if line.quantity + units > MAX_UNITS:
        raise ValidationFailed(f"At most {MAX_UNITS} units per line.", {"quantity": ["Too many."]})
    line.quantity += units
    db.session.flush()
    record_change(actor, "add_line", "stock_transfers", transfer.id, None,
                  {"sku": variant.sku, "quantity": units})
    return line


def remove_transfer_line(transfer: StockTransfer, line_id: int, *, actor: Actor) -> None:
    """Take a line off a draft transfer. Raises Conflict (not a draft), NotFound."""
    transfer = lock_transfer(transfer.id)
    if transfer.status != TransferStatus.DRAFT:
        raise Conflict(f"{transfer.number} is {transfer.status}: lines can only change on a draft.")
    line = next((line for line in transfer.lines if line.id == line_id), None)
    if line is None:
        raise NotFound("No such line.")
    transfer.lines.remove(line)
    db.session.flush()
    record_change(actor, "remove_line", "stock_transfers", transfer.id, {"variant_id": line.variant_id}, None)


def _transfer_units(transfer: StockTransfer) -> tuple[dict[int, int], dict[int, str]]:
    units = {line.variant_id: line.quantity for line in transfer.lines}
    skus = {line.variant_id: line.variant.sku for line in transfer.lines}
    return units, skus


def send_transfer(transfer: StockTransfer, *, actor: Actor) -> StockTransfer:
    """draft → in_transit: the units leave the source (``transfer_out``), all lines or none.
    Raises ValidationFailed (no lines; an inactive location), OutOfStock (more than is
    available at the source), InvalidTransition."""
    transfer = lock_transfer(transfer.id)
    check_transition(TRANSFER_ALLOWED, "transfer", TransferStatus(transfer.status), TransferStatus.IN_TRANSIT)
    if not transfer.lines:
        raise ValidationFailed(f"{transfer.number} has no lines to send.", {"lines": ["Empty."]})
    source = _location(transfer.source, "source")
    units, skus = _transfer_units(transfer)
    take_out(source, units, MovementReason.TRANSFER_OUT, actor=actor, skus=skus,
             note=f"{transfer.number} to {transfer.destination.name}")
    _change(transfer, TransferStatus.IN_TRANSIT, allowed=TRANSFER_ALLOWED, stamps=TRANSFER_STAMPS,
            kind="transfer", actor=actor, table="stock_transfers")
    db.session.flush()
    return transfer


def receive_transfer(transfer: StockTransfer, *, actor: Actor) -> StockTransfer:
    """in_transit → received: the units go into the destination (``transfer_in``).
    Raises ValidationFailed (an inactive destination), InvalidTransition."""
    transfer = lock_transfer(transfer.id)
    check_transition(TRANSFER_ALLOWED, "transfer", TransferStatus(transfer.status), TransferStatus.RECEIVED)
    destination = _location(transfer.destination, "destination")
    units, _ = _transfer_units(transfer)
    put_in(destination, units, MovementReason.TRANSFER_IN, actor=actor,
           note=f"{transfer.number} from {transfer.source.name}")
    _change(transfer, TransferStatus.RECEIVED, allowed=TRANSFER_ALLOWED, stamps=TRANSFER_STAMPS,
            kind="transfer", actor=actor, table="stock_transfers")
    db.session.flush()
    return transfer


def cancel_transfer(transfer: StockTransfer, *, actor: Actor) -> StockTransfer:
    """draft → cancelled (nothing has moved). Raises InvalidTransition once sent."""
    transfer = lock_transfer(transfer.id)
    _change(transfer, TransferStatus.CANCELLED, allowed=TRANSFER_ALLOWED, stamps=TRANSFER_STAMPS,
            kind="transfer", actor=actor, table="stock_transfers")
    db.session.flush()
    return transfer


# --- purchase orders ---------------------------------------------------------


def lock_purchase_order(purchase_order_id: int) -> PurchaseOrder:
    """The purchase order with a row lock and fresh values. Raises NotFound."""
    purchase_order = locked_row(PurchaseOrder, purchase_order_id)
    if purchase_order is None:
        raise NotFound("Purchase order not found.")
    return purchase_order


def create_purchase_order(destination, supplier: str, *, actor: Actor, expected_on: date | None = None,
                          note: str = "") -> PurchaseOrder:
    """A draft purchase order for delivery to an active location. Raises ValidationFailed."""
    supplier = (supplier or "").strip()
    if not supplier or len(supplier) > 200:
        raise ValidationFailed("Name the supplier (up to 200 characters).", {"supplier": ["Required."]})
    destination = _location(destination, "destination")
    purchase_order = PurchaseOrder(supplier=supplier, destination_location_id=destination.id,
                                   expected_on=expected_on, status=PurchaseOrderStatus.DRAFT, note=note or "",
                                   created_by_id=actor.user_id)
    db.session.add(purchase_order)
    db.session.flush()
    record_change(actor, "create", "purchase_orders", purchase_order.id, None,
                  {"supplier": supplier, "destination": destination.code})
    return purchase_order


def add_purchase_order_line(purchase_order: PurchaseOrder, sku: str, quantity, *,
                            actor: Actor) -> PurchaseOrderLine:
    """Scan a SKU onto a draft purchase order (adds to its line if already there).
    Raises ValidationFailed, NotFound (unknown SKU), Conflict (no longer a draft)."""
    units = _units(quantity)
    variant = _variant(sku)
    purchase_order = lock_purchase_order(purchase_order.id)
    if purchase_order.status != PurchaseOrderStatus.DRAFT:
        raise Conflict(f"{purchase_order.number} is {purchase_order.status}: "
                       "lines can only change on a draft.")
    line = next((line for line in purchase_order.lines if line.variant_id == variant.id), None)
    if line is None:
        line = PurchaseOrderLine(variant_id=variant.id, quantity_ordered=0, quantity_received=0)
        purchase_order.lines.append(line)
    if line.quantity_ordered + units > MAX_UNITS:
        raise ValidationFailed(f"At most {MAX_UNITS} units per line.", {"quantity": ["Too many."]})
    line.quantity_ordered += units
    db.session.flush()
    record_change(actor, "add_line", "purchase_orders", purchase_order.id, None,
                  {"sku": variant.sku, "quantity": units})
    return line


def place_purchase_order(purchase_order: PurchaseOrder, *, actor: Actor) -> PurchaseOrder:
    """draft → ordered. Raises ValidationFailed (no lines), InvalidTransition."""
    purchase_order = lock_purchase_order(purchase_order.id)
    check_transition(PURCHASE_ORDER_ALLOWED, "purchase order", PurchaseOrderStatus(purchase_order.status),
                     PurchaseOrderStatus.ORDERED)
    if not purchase_order.lines:
        raise ValidationFailed(f"{purchase_order.number} has no lines.", {"lines": ["Empty."]})
    _change(purchase_order, PurchaseOrderStatus.ORDERED, allowed=PURCHASE_ORDER_ALLOWED,
            stamps=PURCHASE_ORDER_STAMPS, kind="purchase order", actor=actor, table="purchase_orders")
    db.session.flush()
    return purchase_order


@dataclass
class Receipt:
    purchase_order: PurchaseOrder
    received: dict[str, int] = field(default_factory=dict)  # SKU -> units booked now
    warnings: list[str] = field(default_factory=list)  # over-receipts


def receive_purchase_order(purchase_order: PurchaseOrder, quantities: Mapping[str, object], *,
                           actor: Actor) -> Receipt:
    """Book a delivery: SKU -> units received now (partial, complete or more than ordered),
    as ``received`` movements at the destination; the order becomes partially_received or,
    once every line has all it ordered, received. More than ordered is booked and named in
    the receipt's warnings. All lines or none.
    Raises ValidationFailed (nothing to receive, a bad quantity, a SKU not on the order, an
    inactive destination), InvalidTransition (not ordered yet, or closed)."""
    purchase_order = lock_purchase_order(purchase_order.id)
    if purchase_order.status not in (PurchaseOrderStatus.ORDERED, PurchaseOrderStatus.PARTIALLY_RECEIVED):
        check_transition(PURCHASE_ORDER_ALLOWED, "purchase order", PurchaseOrderStatus(purchase_order.status),
                         PurchaseOrderStatus.PARTIALLY_RECEIVED)
    if not quantities:
        raise ValidationFailed("Scan at least one SKU to receive.", {"lines": ["Nothing received."]})
    lines = {line.variant.sku: line for line in purchase_order.lines}
    units: dict[int, int] = {}
    receipt = Receipt(purchase_order)
    for sku, quantity in quantities.items():
        sku = (sku or "").strip()
        if sku not in lines:
            raise ValidationFailed(f"{sku or 'That SKU'} is not on {purchase_order.number}.",
                                   {"sku": ["Not on this purchase order."]})
        n = _units(quantity)
        units[lines[sku].variant_id] = units.get(lines[sku].variant_id, 0) + n
        receipt.received[sku] = receipt.received.get(sku, 0) + n
    destination = _location(purchase_order.destination, "destination")
    put_in(destination, units, MovementReason.RECEIVED, actor=actor,
           note=f"{purchase_order.number} from {purchase_order.supplier}")
    for sku, n in receipt.received.items():
        line = lines[sku]
        line.quantity_received += n
        if line.quantity_received > line.quantity_ordered:
            receipt.warnings.append(f"{sku}: received {line.quantity_received} of {line.quantity_ordered} "
                                    f"ordered ({line.quantity_received - line.quantity_ordered} more).")
    complete = all(line.quantity_received >= line.quantity_ordered for line in purchase_order.lines)
    target = PurchaseOrderStatus.RECEIVED if complete else PurchaseOrderStatus.PARTIALLY_RECEIVED
    _change(purchase_order, target, allowed=PURCHASE_ORDER_ALLOWED, stamps=PURCHASE_ORDER_STAMPS,
            kind="purchase order", actor=actor, table="purchase_orders")
    db.session.flush()
    return receipt


def cancel_purchase_order(purchase_order: PurchaseOrder, *, actor: Actor) -> PurchaseOrder:
    """draft/ordered/partially_received → cancelled: nothing more is expected; what was
    received stays. Raises InvalidTransition."""
    purchase_order = lock_purchase_order(purchase_order.id)
    _change(purchase_order, PurchaseOrderStatus.CANCELLED, allowed=PURCHASE_ORDER_ALLOWED,
            stamps=PURCHASE_ORDER_STAMPS, kind="purchase order", actor=actor, table="purchase_orders")
    db.session.flush()
    return purchase_order
