"""Product reviews: one per shopper and product, moderated by hiding.

Every change to the set of visible reviews recomputes the product's
denormalised ``rating_average`` and ``rating_count``; moderation is audited
with its actor.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import exists, func, select
from sqlalchemy.orm import selectinload

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.catalog.models import Product, Review
from ecom.commerce.models import Order, OrderItem
from ecom.commerce.status import OrderStatus
from ecom.errors import DuplicateError, NotFound, ValidationFailed
from ecom.extensions import db
from ecom.identity.models import User

# An order in any of these has been paid for, so its items count as purchased.
PURCHASED_STATUSES = (OrderStatus.PAID, OrderStatus.PACKED, OrderStatus.PARTIALLY_SHIPPED,
                      OrderStatus.SHIPPED, OrderStatus.READY_FOR_PICKUP, OrderStatus.DELIVERED)


VERIFIED_BUYER = "Verified buyer"
ANONYMOUS = "Anonymous"


def author_name(review: Review) -> str:
    """The name a review is shown under: the author's full name, else "Verified buyer" or
    "Anonymous" - never anything taken from the email address, which is private."""
    full_name = (review.user.full_name or "").strip() if review.user else ""
    if full_name:
        return full_name
    return VERIFIED_BUYER if review.verified_purchase else ANONYMOUS


def list_reviews(product: Product, *, page: int, per_page: int) -> tuple[list[Review], int]:
    """Visible reviews of the product, newest first, and their total."""
    visible = (Review.product_id == product.id, Review.is_hidden.is_(False))
    total = db.session.scalar(select(func.count(Review.id)).where(*visible)) or 0
    reviews = db.session.scalars(
        select(Review)
        .where(*visible)
        .options(selectinload(Review.user))
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(reviews), total


def has_purchased(user: User, product: Product) -> bool:
    """Whether the user has a paid (or later) order containing the product."""
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    Order.user_id == user.id,
                    Order.status.in_([str(status) for status in PURCHASED_STATUSES]),
                    OrderItem.order_id == Order.id,
                    OrderItem.product_id == product.id,
                )
            )
        )
    )


def refresh_product_rating(product: Product) -> None:
    """Recompute the product's average and count over its visible reviews."""
    db.session.flush()
    count, average = db.session.execute(
        select(func.count(Review.id), func.avg(Review.rating)).where(
            Review.product_id == product.id, Review.is_hidden.is_(False)
        )
    ).one()
    product.rating_count = count or 0
    product.rating_average = (
        Decimal(str(average)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if count else None
    )
    db.session.flush()


def create_review(product: Product, user: User, *, rating: int, title: str = "", comment: str = "") -> Review:
    """The user's review of the product, marked verified when they bought it.

    Raises ValidationFailed (rating outside 1..5), DuplicateError (already reviewed).
    """
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationFailed("Rating must be between 1 and 5.", {"rating": ["Must be between 1 and 5."]})
    already = db.session.scalar(
        select(Review.id).where(Review.product_id == product.id, Review.user_id == user.id)
    )
    if already is not None:
        raise DuplicateError("You have already reviewed this product.")
    review = Review(
        product_id=product.id,
        user_id=user.id,
        rating=rating,
        title=(title or "").strip(),
        comment=(comment or "").strip(),
        verified_purchase=has_purchased(user, product),
    )
    review.user = user
    db.session.add(review)
    refresh_product_rating(product)
    return review


def get_review(review_id: int) -> Review:
    """Raises NotFound."""
    review = db.session.get(Review, review_id)
    if review is None:
        raise NotFound("Review not found.")
    return review


def _set_hidden(review: Review, hidden: bool, actor: Actor) -> bool:
    """Flip the flag and audit it; False when the review already had it."""
    if review.is_hidden == hidden:
        return False
    review.is_hidden = hidden
    record_change(actor, "update", "reviews", review.id, {"is_hidden": not hidden}, {"is_hidden": hidden})
    return True


def set_review_hidden(review: Review, hidden: bool, *, actor: Actor) -> Review:
    """Take a review out of the storefront and the product's rating (moderation), or put
    it back; audited for ``actor``."""
    if _set_hidden(review, bool(hidden), actor):
        refresh_product_rating(review.product)
    return review


def set_reviews_hidden(review_ids: Iterable[int], hidden: bool, *, actor: Actor) -> int:
    """Hide or show many reviews at once, each change audited; returns how many changed.

    Each affected product's rating is recomputed once.
    """
    ids = {int(i) for i in review_ids}
    if not ids:
        return 0
    reviews = db.session.scalars(
        select(Review).where(Review.id.in_(ids)).order_by(Review.id).options(selectinload(Review.product))
    ).all()
    changed = [review for review in reviews if _set_hidden(review, bool(hidden), actor)]
    for product in {review.product_id: review.product for review in changed}.values():
        refresh_product_rating(product)
    return len(changed)
