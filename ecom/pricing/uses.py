"""Promotion uses: taken when an order is placed, given back when it is cancelled unpaid or
expires. Limits hold under any concurrency because a use is taken by one conditional
UPDATE of the promotion's counter (``times_used < usage_limit``), which also locks the
promotion's row until the commit: the customer's own uses are counted after it, so two
checkouts of one customer cannot both pass a per-customer limit.

Lock order, everywhere: the order, then a generated code's row, then promotions by id, then
inventory rows (``cancel_order`` gives uses back before it releases stock).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache

from sqlalchemy import insert, or_, select, update

from ecom.db import utcnow
from ecom.errors import Conflict
from ecom.extensions import db
from ecom.pricing.engine import CUSTOMER_LIMIT, USED_UP, AppliedPromotion, Quote, VoucherRefused
from ecom.pricing.models import Promotion, PromotionUse, VoucherCode
from ecom.pricing.quote import Customer, customer_uses
from ecom.pricing.rules import COUNTER_ONLY

# A use counter moved: not a change of the rules (``ecom.pricing.rules`` keeps its snapshot).
COUNTER = {COUNTER_ONLY: True}

log = logging.getLogger(__name__)


def claim_uses(order_id: int, quote: Quote, *, customer: Customer) -> None:
    """Take one use of every promotion ``quote`` applied, for order ``order_id``: a
    ``promotion_uses`` row each, written by one INSERT (every checkout with a voucher or a
    sale claims).

    Raises VoucherRefused (the voucher, or its generated code, was used up meanwhile, or the
    customer reached its limit) and Conflict (a sale ran out meanwhile); the caller rolls
    back what was taken.
    """
    uses = []
    generated_id = None
    voucher = quote.voucher
    if voucher is not None and voucher.generated_code:
        generated_id = db.session.scalar(
            update(VoucherCode)
            .where(VoucherCode.code == voucher.code,
                   _fits(VoucherCode))
            .values(times_used=VoucherCode.times_used + 1)
            .returning(VoucherCode.id)
            .execution_options(synchronize_session=False, **COUNTER))
        if generated_id is None:
            raise VoucherRefused(USED_UP, "This code has been used up.")
    for applied in sorted(quote.promotions, key=lambda p: p.promotion_id):
        is_voucher = voucher is not None and applied.promotion_id == voucher.promotion_id
        if not applied.limited:
            # Nothing to hold: recorded, not counted, and no row of the promotion locked.
            uses.append(_use(order_id, applied, customer, generated_id if is_voucher else None))
            continue
        taken = db.session.execute(
            update(Promotion)
            .where(Promotion.id == applied.promotion_id, Promotion.is_active.is_(True),
                   _fits(Promotion))
            .values(times_used=Promotion.times_used + 1)
            .returning(Promotion.per_customer_limit)
            .execution_options(synchronize_session=False, **COUNTER)
        ).first()
        if taken is None:
            if is_voucher:
                raise VoucherRefused(USED_UP, "This code has been used up.")
            raise Conflict(f"The promotion '{applied.name}' has just ended; check the new total.")
        limit = taken[0]
        # The row is ours until the commit: uses counted now cannot grow behind our back.
        if limit is not None and customer_uses(applied.promotion_id, customer) >= limit:
            if is_voucher:
                raise VoucherRefused(CUSTOMER_LIMIT, "You have already used this code as often as it allows.")
            raise Conflict(f"You have already had the promotion '{applied.name}' as often as it allows.")
        uses.append(_use(order_id, applied, customer, generated_id if is_voucher else None))
    if uses:
        db.session.execute(_insert_use(), uses)


@cache
def _insert_use():
    return insert(PromotionUse.__table__)


def _use(order_id: int, applied: AppliedPromotion, customer: Customer, code_id: int | None) -> dict:
    return {"promotion_id": applied.promotion_id, "voucher_code_id": code_id, "order_id": order_id,
            "user_id": customer.user_id, "email": customer.email or "", "code": applied.code,
            "discount": applied.discount}


def release_uses(order_id: int) -> int:
    """Give back the uses order ``order_id`` holds (it was cancelled unpaid or expired); how
    many. Call with the order locked; giving back twice does nothing."""
    uses = list(db.session.scalars(
        select(PromotionUse).where(PromotionUse.order_id == order_id, PromotionUse.released_at.is_(None))
        .order_by(PromotionUse.voucher_code_id.is_(None), PromotionUse.promotion_id)))
    for use in _codes_first(uses):
        if use.voucher_code_id is not None:
            db.session.execute(update(VoucherCode).where(VoucherCode.id == use.voucher_code_id,
                                                         VoucherCode.times_used > 0)
                               .values(times_used=VoucherCode.times_used - 1)
                               .execution_options(synchronize_session=False, **COUNTER))
    for use in sorted(uses, key=lambda u: u.promotion_id):
        # Only a limited promotion keeps the counter (an unlimited one's row is not even locked).
        db.session.execute(update(Promotion)
                           .where(Promotion.id == use.promotion_id, Promotion.times_used > 0, _limited())
                           .values(times_used=Promotion.times_used - 1)
                           .execution_options(synchronize_session=False, **COUNTER))
        use.released_at = utcnow()
    db.session.flush()
    return len(uses)


def restore_uses(order_id: int) -> int:
    """Take back the uses an expired order gave back, when a late payment revives it: each
    one that still fits its limit (the discount is honoured either way: the money is in).
    How many were taken back."""
    uses = list(db.session.scalars(
        select(PromotionUse).where(PromotionUse.order_id == order_id, PromotionUse.released_at.is_not(None))
        .order_by(PromotionUse.promotion_id)))
    restored = 0
    for use in uses:
        if use.voucher_code_id is not None and db.session.scalar(
                update(VoucherCode).where(VoucherCode.id == use.voucher_code_id,
                                          _fits(VoucherCode))
                .values(times_used=VoucherCode.times_used + 1).returning(VoucherCode.id)
                .execution_options(synchronize_session=False, **COUNTER)) is None:
            log.info("order %s: the use of code %s could not be taken back (used up)", order_id, use.code)
            continue
        taken = db.session.scalar(
            update(Promotion).where(Promotion.id == use.promotion_id, _limited(),
                                    _fits(Promotion))
            .values(times_used=Promotion.times_used + 1).returning(Promotion.id)
            .execution_options(synchronize_session=False, **COUNTER))
        if taken is None and _is_limited(use.promotion_id):
            log.info("order %s: the use of promotion %s could not be taken back (used up)", order_id,
                     use.promotion_id)
            continue
        use.released_at = None
        restored += 1
    db.session.flush()
    return restored


def _limited():
    """The promotion keeps a use counter: it has a usage or a per-customer limit."""
    return or_(Promotion.usage_limit.is_not(None), Promotion.per_customer_limit.is_not(None))


def _is_limited(promotion_id: int) -> bool:
    return db.session.scalar(select(Promotion.id).where(Promotion.id == promotion_id, _limited())) is not None


def _fits(model):
    """One more use stays within the row's limit (a promotion's or a generated code's)."""
    return or_(model.usage_limit.is_(None), model.times_used < model.usage_limit)


def _codes_first(uses: Iterable[PromotionUse]) -> list[PromotionUse]:
    return [use for use in uses if use.voucher_code_id is not None]
