"""Returns (RMAs) and refunds by line (commerce-v2 §5).

A shopper asks for some units of a delivered order back within RETURN_WINDOW_DAYS of its
delivery (``request_return``); staff approve or reject it, receive the goods - each line
restocked into a location (a ``return`` movement) or written off (a ``return`` then a
``damage`` movement: the unit never becomes available) - and refund it (``refund_return``).
A goodwill refund (``goodwill_refund``) pays back units of lines, or the shipping, without a
return.

Money: a line's refund is its share of what was paid (``ecom.pricing.shares.refundable_share``,
after its discount, with its tax), counting the units of that line refunded before
(``refund_lines``), so every line refunded and the shipping add up to the order's total to the
cent; it is never more than the payment has left (``refundable_amount``). Refunds go through
``request_refund``: recorded under the order's lock, made at the gateway after the commit with
the refund's idempotency key, retried from the record.

Concurrency: every service locks the order row first (``lock_order``), so two requests for the
last unit of a line are serialised and the second sees the first's lines.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import and_, exists, func, or_, select

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.commerce.models import Order, OrderItem, PaymentRefund, RefundLine, Return, ReturnLine
from ecom.commerce.orders import change_status, lock_order, order_event_data, transition
from ecom.commerce.payments import refundable_amount, request_refund
from ecom.commerce.status import (
    RETURN_ALLOWED,
    EventKind,
    OrderStatus,
    RefundStatus,
    ReturnCondition,
    ReturnStatus,
)
from ecom.db import as_utc, money, utcnow
from ecom.errors import Conflict, NotFound, ValidationFailed
from ecom.extensions import db
from ecom.fulfillment.models import Fulfillment, FulfillmentLine
from ecom.inventory.models import MovementReason
from ecom.inventory.services import default_location, get_location, put_in, take_out
from ecom.notifications.models import EventType
from ecom.notifications.services import emit
from ecom.pricing.shares import refundable_share, shipping_paid
from ecom.runtime import settings

ZERO = Decimal("0.00")
MAX_REASON_LENGTH = 500
# Returns whose units still count against a line (a rejected or closed one gave them back).
HOLDING = (ReturnStatus.REQUESTED, ReturnStatus.APPROVED, ReturnStatus.RECEIVED, ReturnStatus.REFUNDED)
RETURN_STAMPS = {ReturnStatus.APPROVED: "approved_at", ReturnStatus.RECEIVED: "received_at",
                 ReturnStatus.REFUNDED: "refunded_at"}


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int
    reason: str = ""


@dataclass(frozen=True)
class Receipt:
    """What happened to one received line: ``condition`` restock|damaged, at ``location_id``
    (restock: required; damaged: where it was written off, the default location if None)."""

    condition: str
    location_id: int | None = None


# --- reading ---------------------------------------------------------------------------------


def returned_units(order_id: int, *, statuses=HOLDING,
                   exclude_return_id: int | None = None) -> dict[int, int]:
    """order item id -> units on the order's returns in ``statuses``. A return closed after
    its goods were received holds its units too (they came back: they can't come back twice)."""
    wanted = Return.status.in_([str(s) for s in statuses])
    if statuses is HOLDING:
        wanted = wanted | ((Return.status == ReturnStatus.CLOSED) & Return.received_at.is_not(None))
    query = (select(ReturnLine.order_item_id, func.sum(ReturnLine.quantity))
             .join(Return, Return.id == ReturnLine.return_id)
             .where(Return.order_id == order_id, wanted)
             .group_by(ReturnLine.order_item_id))
    if exclude_return_id is not None:
        query = query.where(Return.id != exclude_return_id)
    return {item_id: int(units) for item_id, units in db.session.execute(query)}


def refunded_units(order_id: int) -> dict[int | None, int]:
    """order item id (None: the shipping) -> units refunded by line, counting refunds that are
    made or still to be made (a refund that failed for good gives its units back)."""
    rows = db.session.execute(
        select(RefundLine.order_item_id, func.sum(RefundLine.quantity))
        .outerjoin(PaymentRefund, PaymentRefund.id == RefundLine.refund_id)
        .where(RefundLine.order_id == order_id,
               (RefundLine.refund_id.is_(None)) | (PaymentRefund.status != RefundStatus.FAILED))
        .group_by(RefundLine.order_item_id))
    return {item_id: int(units) for item_id, units in rows}


def line_refundables(order: Order) -> list[dict]:
    """Per order line: units bought, refunded so far, and what refunding the rest is worth."""
    done = refunded_units(order.id)
    rows = []
    for item in order.items:
        already = done.get(item.id, 0)
        rows.append({"item": item, "refunded_units": already, "left_units": item.quantity - already,
                     "left_amount": refundable_share(order, item, item.quantity - already, already=already)})
    return rows


def shipping_refundable(order: Order) -> Decimal:
    return ZERO if refunded_units(order.id).get(None) else money(shipping_paid(order))


def shipped_from(order_id: int) -> dict[int, list[int]]:
    """order item id -> the stock locations whose fulfillments sent its units (where its
    returns are expected back), in the order's fulfillment order."""
    rows = db.session.execute(
        select(FulfillmentLine.order_item_id, Fulfillment.location_id)
        .join(Fulfillment, Fulfillment.id == FulfillmentLine.fulfillment_id)
        .where(Fulfillment.order_id == order_id).order_by(Fulfillment.id))
    found: dict[int, list[int]] = defaultdict(list)
    for item_id, location_id in rows:
        found[item_id].append(location_id)
    return dict(found)


def at_location(location_id: int):
    """SQL: the return (``Return``) concerns the location: a line was received there, or, not
    received yet, it was shipped from there (so its goods are expected back there)."""
    shipped_there = exists(
        select(FulfillmentLine.id).join(Fulfillment, Fulfillment.id == FulfillmentLine.fulfillment_id)
        .where(FulfillmentLine.order_item_id == ReturnLine.order_item_id,
               Fulfillment.location_id == location_id))
    return exists(select(ReturnLine.id).where(
        ReturnLine.return_id == Return.id,
        or_(ReturnLine.location_id == location_id, and_(ReturnLine.location_id.is_(None), shipped_there))))


def get_return(return_id: int) -> Return:
    """Raises NotFound."""
    ret = db.session.get(Return, return_id)
    if ret is None:
        raise NotFound("Return not found.")
    return ret


def returns_of(order: Order) -> list[Return]:
    return list(db.session.scalars(select(Return).where(Return.order_id == order.id).order_by(Return.id)))


def window_ends(order: Order):
    """When the order's return window closes (None: not delivered yet)."""
    delivered = as_utc(order.delivered_at)
    if delivered is None:
        return None
    return delivered + timedelta(days=int(settings()["RETURN_WINDOW_DAYS"]))


# --- the shopper asks ------------------------------------------------------------------------


def request_return(order: Order, lines: list[LineRequest], *, actor: Actor, now=None) -> Return:
    """Ask for ``lines`` (SKU, units, reason) of a delivered ``order`` back.

    Under the order's lock, so two requests for the last unit are serialised: the units on
    the order's returns that are not rejected or closed count. Emits RETURN_REQUESTED; audited.
    Raises ValidationFailed (no lines, a SKU not on the order, units not a positive whole
    number, more units than bought and not yet asked back), Conflict (not delivered, or the
    window closed).
    """
    if not lines:
        raise ValidationFailed("A return needs at least one line.", {"lines": ["At least one line."]})
    order = lock_order(order.id)
    if order.status != OrderStatus.DELIVERED:
        raise Conflict(f"Order {order.order_number} is {order.status}: "
                       "only a delivered order can be returned.")
    ends = window_ends(order)
    if ends is None or (as_utc(now) or utcnow()) > ends:
        raise Conflict(f"The return window of order {order.order_number} closed "
                       f"{int(settings()['RETURN_WINDOW_DAYS'])} days after its delivery.")
    by_sku = {item.sku: item for item in order.items}
    wanted: dict[int, int] = defaultdict(int)
    reasons: dict[int, str] = {}
    errors: dict[str, list[str]] = {}
    for index, line in enumerate(lines):
        item = by_sku.get(line.sku)
        quantity = line.quantity
        if item is None:
            errors[f"lines.{index}.sku"] = [f"{line.sku} is not on order {order.order_number}."]
            continue
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            errors[f"lines.{index}.quantity"] = ["Must be a whole number of at least 1."]
            continue
        wanted[item.id] += quantity
        reasons[item.id] = "; ".join(r for r in (reasons.get(item.id), (line.reason or "").strip()) if r)
    held = returned_units(order.id)
    for item_id, quantity in wanted.items():
        item = next(i for i in order.items if i.id == item_id)
        left = item.quantity - held.get(item_id, 0)
        if quantity > left:
            errors[f"lines.{item.sku}"] = [f"{item.sku}: {quantity} asked, {left} of {item.quantity} "
                                           "left to return."]
    if errors:
        raise ValidationFailed("The return cannot be accepted: "
                               + " ".join(m for messages in errors.values() for m in messages), errors)
    sequence = db.session.scalar(select(func.count(Return.id)).where(Return.order_id == order.id)) + 1
    ret = Return(rma_number=f"RMA-{order.order_number}-{sequence}", order_id=order.id,
                 status=ReturnStatus.REQUESTED, requested_by=actor.label, note="")
    for item_id in sorted(wanted):
        ret.lines.append(ReturnLine(order_item_id=item_id, quantity=wanted[item_id],
                                    reason=reasons[item_id][:MAX_REASON_LENGTH]))
    db.session.add(ret)
    db.session.flush()
    _emit(EventType.RETURN_REQUESTED, order, ret)
    record_change(actor, "return.request", "orders", order.id, None,
                  {"rma_number": ret.rma_number,
                   "lines": {line.order_item_id: line.quantity for line in ret.lines}})
    return ret


# --- staff decide ----------------------------------------------------------------------------


def _locked_return(return_id: int) -> tuple[Order, Return]:
    ret = get_return(return_id)
    order = lock_order(ret.order_id)
    db.session.refresh(ret)
    return order, ret


def _move(ret: Return, target: ReturnStatus, *, actor: Actor, note: str = "") -> None:
    was = ret.status
    change_status(ret, target, allowed=RETURN_ALLOWED, kind=EventKind.ORDER, order_id=ret.order_id,
                  actor=actor, note=f"return {ret.rma_number} {target}" + (f": {note}" if note else ""),
                  stamps=RETURN_STAMPS, history=False, name="return")
    record_change(actor, f"return.{target}", "orders", ret.order_id, {"status": was},
                  {"rma_number": ret.rma_number, "status": ret.status, "note": note})


def approve_return(ret: Return, *, actor: Actor) -> Return:
    """requested -> approved; emits RETURN_APPROVED. Raises InvalidTransition."""
    order, ret = _locked_return(ret.id)
    _move(ret, ReturnStatus.APPROVED, actor=actor)
    _emit(EventType.RETURN_APPROVED, order, ret)
    db.session.flush()
    return ret


def reject_return(ret: Return, *, actor: Actor, note: str = "") -> Return:
    """requested -> rejected (its units may be asked for again); emits RETURN_REJECTED.
    Raises InvalidTransition."""
    order, ret = _locked_return(ret.id)
    _move(ret, ReturnStatus.REJECTED, actor=actor, note=note)
    ret.note = note
    _emit(EventType.RETURN_REJECTED, order, ret, note=note)
    db.session.flush()
    return ret


def close_return(ret: Return, *, actor: Actor, note: str = "") -> Return:
    """Staff end a return without a refund: withdrawn, never sent back, or (received) not to
    be refunded. A return closed before its goods came back gives its units back (they may
    be asked for again); one closed after keeps them. Raises InvalidTransition."""
    order, ret = _locked_return(ret.id)
    _move(ret, ReturnStatus.CLOSED, actor=actor, note=note)
    ret.note = note[:MAX_REASON_LENGTH]
    db.session.flush()
    return ret


def find_return(order: Order, rma_number: str) -> Return:
    """``order``'s return of that RMA number. Raises NotFound (also for another order's RMA)."""
    ret = db.session.scalar(select(Return).where(Return.order_id == order.id,
                                                 Return.rma_number == rma_number))
    if ret is None:
        raise NotFound("Return not found.")
    return ret


WITHDRAWN_NOTE = "withdrawn by the customer"


def withdraw_return(ret: Return, *, actor: Actor) -> Return:
    """The shopper takes back their own request while staff have not decided on it yet:
    requested -> closed, its units free to be asked for again. Audited. Raises Conflict once
    the return was approved, rejected or closed (the shop then closes it, if at all)."""
    order, ret = _locked_return(ret.id)
    if ret.status != ReturnStatus.REQUESTED:
        contact = " Please contact us to close it." if ret.status == ReturnStatus.APPROVED else ""
        raise Conflict(f"Return {ret.rma_number} is {ret.status}: only a requested return can be "
                       f"withdrawn.{contact}")
    _move(ret, ReturnStatus.CLOSED, actor=actor, note=WITHDRAWN_NOTE)
    ret.note = WITHDRAWN_NOTE
    db.session.flush()
    return ret


def receive_return(ret: Return, receipts: dict[int, Receipt], *, actor: Actor) -> Return:
    """The goods arrived: approved -> received, and per line (``receipts``: return line id ->
    Receipt) restocked into its location (a ``return`` movement: available there at once) or
    written off (a ``return`` and a ``damage`` movement at the location: never available).
    Raises ValidationFailed (a line without a receipt, an unknown condition, a restock without
    a location or into an inactive one), NotFound (an unknown location), InvalidTransition.
    """
    order, ret = _locked_return(ret.id)
    if ret.status != ReturnStatus.APPROVED:
        _move(ret, ReturnStatus.RECEIVED, actor=actor)  # raises InvalidTransition
    errors: dict[str, list[str]] = {}
    plan = []
    for line in ret.lines:
        receipt = receipts.get(line.id)
        sku = line.order_item.sku
        if receipt is None:
            errors[f"lines.{line.id}"] = [f"{sku}: restock or write off."]
            continue
        if receipt.condition not in set(ReturnCondition):
            errors[f"lines.{line.id}.condition"] = ["Must be restock or damaged."]
            continue
        if receipt.condition == ReturnCondition.RESTOCK and receipt.location_id is None:
            errors[f"lines.{line.id}.location"] = [f"{sku}: restock into which location?"]
            continue
        if line.order_item.variant_id is None and receipt.condition == ReturnCondition.RESTOCK:
            errors[f"lines.{line.id}"] = [f"{sku} no longer exists in the catalog: write it off."]
            continue
        plan.append((line, receipt))
    if errors:
        raise ValidationFailed("The return cannot be received as given: "
                               + " ".join(m for messages in errors.values() for m in messages), errors)
    for line, receipt in plan:
        location = (get_location(receipt.location_id) if receipt.location_id is not None
                    else default_location())
        variant_id = line.order_item.variant_id
        note = f"return {ret.rma_number}"
        line.condition = receipt.condition
        line.location_id = location.id
        if variant_id is None:
            continue
        put_in(location, {variant_id: line.quantity}, MovementReason.RETURN, actor=actor, note=note)
        if receipt.condition == ReturnCondition.DAMAGED:
            take_out(location, {variant_id: line.quantity}, MovementReason.DAMAGE, actor=actor,
                     note=f"{note}: written off", skus={variant_id: line.order_item.sku})
    _move(ret, ReturnStatus.RECEIVED, actor=actor)
    db.session.flush()
    return ret


# --- refunds ---------------------------------------------------------------------------------


def _refund_lines(order: Order, units: dict[int, int], *, shipping: bool, actor: Actor,
                  reason: str) -> tuple[PaymentRefund | None, dict[int | None, Decimal]]:
    """Refund ``units`` (order item id -> units) and the shipping when asked, as one gateway
    refund: each line's next share, the whole capped at what the payment has left. The caller
    holds the order's lock. Returns the refund (None when there was nothing to pay) and the
    amount per item id (None: the shipping)."""
    done = refunded_units(order.id)
    items = {item.id: item for item in order.items}
    amounts: dict[int | None, Decimal] = {}
    quantities: dict[int | None, int] = {}
    for item_id, wanted in sorted(units.items()):
        item = items[item_id]
        already = done.get(item_id, 0)
        quantity = min(wanted, item.quantity - already)  # units refunded by goodwill before pay nothing
        amounts[item_id] = refundable_share(order, item, quantity, already=already) if quantity > 0 else ZERO
        quantities[item_id] = quantity
    if shipping:
        if done.get(None):
            raise ValidationFailed("The shipping was refunded already.", {"shipping": ["Already refunded."]})
        amounts[None] = money(shipping_paid(order))
        quantities[None] = 1
    payment = order.payment
    left = refundable_amount(payment) if payment is not None else ZERO
    total = money(sum(amounts.values(), ZERO))
    if total > left:
        # Money refunded by amount before: what is left is the bound, taken off the last lines.
        excess = total - left
        for key in reversed(list(amounts)):
            cut = min(excess, amounts[key])
            amounts[key] -= cut
            excess -= cut
        total = left
    refund = None
    if total > 0:
        refund = request_refund(payment, total, actor=actor, reason=reason)
    for key, amount in amounts.items():
        if quantities[key] > 0:
            db.session.add(RefundLine(refund_id=refund.id if refund else None, order_id=order.id,
                                      order_item_id=key, quantity=quantities[key], amount=money(amount)))
    db.session.flush()
    return refund, amounts


def refund_return(ret: Return, *, actor: Actor, shipping: bool = False) -> Return:
    """received -> refunded: the lines' refundable shares (and the shipping when asked) as one
    refund through the gateway (after the commit, idempotent, retried), never beyond what the
    payment has left. The order becomes ``returned`` once every unit is returned and refunded.
    Emits RETURN_REFUNDED. Raises InvalidTransition, ValidationFailed (shipping refunded before).
    """
    order, ret = _locked_return(ret.id)
    if ret.status != ReturnStatus.RECEIVED:
        _move(ret, ReturnStatus.REFUNDED, actor=actor)  # raises InvalidTransition
    units = {line.order_item_id: line.quantity for line in ret.lines}
    refund, amounts = _refund_lines(order, units, shipping=shipping, actor=actor,
                                    reason=f"return {ret.rma_number}")
    for line in ret.lines:
        line.refund_amount = money(amounts.get(line.order_item_id, ZERO))
    ret.refund_id = refund.id if refund else None
    ret.refund_amount = money(sum(amounts.values(), ZERO))
    _move(ret, ReturnStatus.REFUNDED, actor=actor)
    _emit(EventType.RETURN_REFUNDED, order, ret, refund_amount=str(ret.refund_amount))
    _mark_returned_when_complete(order, actor=actor)
    db.session.flush()
    return ret


def goodwill_refund(order: Order, units: dict[int, int], *, actor: Actor, shipping: bool = False,
                    reason: str = "goodwill") -> PaymentRefund | None:
    """Refund units of lines (order item id -> units), and the shipping when asked, without a
    return: the same shares and bound as a return's refund. Raises ValidationFailed (nothing
    asked, a line not on the order, units not a positive whole number or more than are left to
    refund), Conflict (nothing paid to refund)."""
    order = lock_order(order.id)
    if not units and not shipping:
        raise ValidationFailed("Choose the lines or the shipping to refund.", {"lines": ["Nothing chosen."]})
    done = refunded_units(order.id)
    items = {item.id: item for item in order.items}
    errors: dict[str, list[str]] = {}
    for item_id, quantity in units.items():
        item = items.get(item_id)
        if item is None:
            errors[f"lines.{item_id}"] = ["Not a line of this order."]
        elif not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            errors[f"lines.{item_id}"] = ["Must be a whole number of at least 1."]
        elif quantity > item.quantity - done.get(item_id, 0):
            errors[f"lines.{item_id}"] = [f"{item.sku}: {item.quantity - done.get(item_id, 0)} units left "
                                          "to refund."]
    if errors:
        raise ValidationFailed("The refund cannot be made as given.", errors)
    if order.payment is None or refundable_amount(order.payment) <= 0:
        raise Conflict(f"Order {order.order_number} has nothing left to refund.")
    refund, _ = _refund_lines(order, dict(units), shipping=shipping, actor=actor, reason=reason)
    return refund


def _mark_returned_when_complete(order: Order, *, actor: Actor) -> None:
    refunded_back = returned_units(order.id, statuses=(ReturnStatus.REFUNDED,))
    if order.status == OrderStatus.DELIVERED and all(
            refunded_back.get(item.id, 0) >= item.quantity for item in order.items):
        transition(order, OrderStatus.RETURNED, actor=actor, note="every unit returned and refunded")


def _emit(event_type: EventType, order: Order, ret: Return, **extra) -> None:
    emit(event_type, {
        **order_event_data(order),
        "rma_number": ret.rma_number,
        "return_status": ret.status,
        "return_lines": [{"sku": line.order_item.sku, "product_name": line.order_item.product_name,
                          "quantity": line.quantity, "reason": line.reason} for line in ret.lines],
        **extra,
    })


def order_item(order: Order, item_id: int) -> OrderItem:
    """Raises NotFound for a line of another order."""
    item = db.session.get(OrderItem, item_id)
    if item is None or item.order_id != order.id:
        raise NotFound("Order line not found.")
    return item
