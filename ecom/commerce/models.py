from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, synonym

from ecom.commerce.status import (
    EventKind,
    OrderStatus,
    PaymentStatus,
    RefundStatus,
    ReturnCondition,
    ReturnStatus,
)
from ecom.db import MONEY, Timestamp, TimestampMixin, one_of, utcnow
from ecom.extensions import db


class Cart(TimestampMixin, db.Model):
    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    # Opaque, unguessable handle for a guest cart (secrets.token_urlsafe).
    token: Mapped[str | None] = mapped_column(String(64), unique=True)
    session_id: Mapped[str | None] = mapped_column(String(128), index=True)

    items: Mapped[list[CartItem]] = relationship(
        back_populates="cart", cascade="all, delete-orphan", order_by="CartItem.id"
    )
    user = relationship("User")


class CartItem(TimestampMixin, db.Model):
    __tablename__ = "cart_items"
    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 99", name="quantity_range"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        UniqueConstraint("cart_id", "variant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(MONEY)  # snapshot when the line was added

    cart: Mapped[Cart] = relationship(back_populates="items")
    product = relationship("Product")
    variant = relationship("Variant")


class Order(TimestampMixin, db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        one_of("status", OrderStatus),
        CheckConstraint(
            "subtotal >= 0 AND tax >= 0 AND shipping_cost >= 0", name="amounts_not_negative"
        ),
        CheckConstraint("discount_total >= 0 AND discount_total <= subtotal",
                        name="discount_within_subtotal"),
        CheckConstraint("shipping_tax >= 0 AND shipping_tax <= tax", name="shipping_tax_within_tax"),
        # A tolerance below one cent, because SQLite stores NUMERIC as binary floats. With prices
        # that include tax the tax is a part of the amounts, not added to them.
        CheckConstraint(
            "abs(total - (subtotal - discount_total + shipping_cost"
            " + CASE WHEN prices_include_tax THEN 0 ELSE tax END)) < 0.005",
            name="total_adds_up",
        ),
        # The back office's list orders; the id makes a deep page's ids an index-only scan.
        Index("ix_orders_created_id", "created_at", "id"),
        Index("ix_orders_status_created_id", "status", "created_at", "id"),
        Index("ix_orders_total_id", "total", "id"),
        Index("ix_orders_paid_id", "paid_at", "id"),
        Index("ix_orders_user_created", "user_id", "created_at"),
        # The per-address cap on open unpaid guest orders counts these.
        Index("ix_orders_client_ip_status", "client_ip", "status"),
        # The back office's guest-orders filter, newest first: guest orders are few (migration 0013).
        Index("ix_orders_guest_created_id", "created_at", "id",
              postgresql_where=text("order_token_hash IS NOT NULL"),
              sqlite_where=text("order_token_hash IS NOT NULL")),
        # The back office's search finds an email typed whole, in any case, here first
        # (admin.base.ExactFirstSearch; migration 0014).
        Index("ix_orders_email_lower", text("lower(email)")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for a guest order (until a signed-in shopper claims it with its order token).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.CREATED)
    # What was priced (ecom.pricing), kept as it was whatever the rules say later.
    subtotal: Mapped[Decimal] = mapped_column(MONEY)
    discount_total: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"), server_default="0")
    tax: Mapped[Decimal] = mapped_column(MONEY)  # tax_total: the lines' tax plus shipping_tax
    shipping_cost: Mapped[Decimal] = mapped_column(MONEY)
    shipping_tax: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"), server_default="0")
    total: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    prices_include_tax: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    shipping_method_code: Mapped[str | None] = mapped_column(String(40))
    shipping_method_name: Mapped[str | None] = mapped_column(String(120))
    voucher_code: Mapped[str | None] = mapped_column(String(64))
    # Set when the shipping method is a pickup (click & collect) at this store.
    pickup_store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"),
                                                        index=True)
    shipping_address: Mapped[dict] = mapped_column(JSON)
    billing_address: Mapped[dict] = mapped_column(JSON)
    email: Mapped[str] = mapped_column(String(255), default="")  # snapshot for notifications
    paid_at: Mapped[datetime | None] = Timestamp(nullable=True)
    packed_at: Mapped[datetime | None] = Timestamp(nullable=True)
    shipped_at: Mapped[datetime | None] = Timestamp(nullable=True)
    delivered_at: Mapped[datetime | None] = Timestamp(nullable=True)
    cancelled_at: Mapped[datetime | None] = Timestamp(nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    # A guest order's token, as its SHA-256 (hex): the token itself is shown once, never stored.
    order_token_hash: Mapped[str | None] = mapped_column(String(64))
    # The cart whose checkout placed it (a guest's cart is found by it; the paid order clears it).
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="SET NULL"))
    # Where a guest order was placed from (the per-address cap on open unpaid guest orders).
    client_ip: Mapped[str | None] = mapped_column(String(45))

    user = relationship("User")
    pickup_store = relationship("Store")
    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderItem.id"
    )
    # Every history row (order, payment and fulfillment changes), as the back office shows it.
    history: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderEvent.id"
    )
    # The order's own status changes.
    events: Mapped[list[OrderEvent]] = relationship(
        primaryjoin=f"and_(Order.id == OrderEvent.order_id, OrderEvent.kind == '{EventKind.ORDER}')",
        order_by="OrderEvent.id", viewonly=True,
    )
    payments: Mapped[list[Payment]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Payment.id"
    )
    reservations = relationship(
        "StockReservation", back_populates="order", order_by="StockReservation.variant_id"
    )
    # One per stock location the order's units come from (a split shipment has several).
    fulfillments = relationship("Fulfillment", back_populates="order", order_by="Fulfillment.id")

    @property
    def fulfillment(self):
        """The first fulfillment: the only one unless the order ships from several locations."""
        return self.fulfillments[0] if self.fulfillments else None

    # The spec's name for the order's tax; the column keeps its first name.
    tax_total = synonym("tax")

    @property
    def placed_as_guest(self) -> bool:
        """Placed without an account (it may have been claimed by one since)."""
        return self.order_token_hash is not None

    @property
    def payment(self) -> Payment | None:
        """The latest payment attempt."""
        return self.payments[-1] if self.payments else None

    def __str__(self) -> str:
        return self.order_number


class OrderItem(db.Model):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("abs(line_total - price * quantity) < 0.005", name="line_total_adds_up"),
        CheckConstraint("discount >= 0 AND discount <= line_total", name="discount_within_line"),
        CheckConstraint("tax >= 0", name="tax_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True
    )
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", ondelete="SET NULL"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str] = mapped_column(String(200))
    variant_name: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(MONEY)
    line_total: Mapped[Decimal] = mapped_column(MONEY)  # price * quantity, before the discount
    discount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"), server_default="0")
    tax: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"), server_default="0")
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(7, 4), default=Decimal("0"), server_default="0")

    order: Mapped[Order] = relationship(back_populates="items")


class OrderEvent(db.Model):
    """One change in an order's history: of the order itself, its payment or its fulfillment."""

    __tablename__ = "order_events"
    __table_args__ = (one_of("kind", EventKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default=EventKind.ORDER,
                                      server_default=EventKind.ORDER.value)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)

    order: Mapped[Order] = relationship(back_populates="history")


class Payment(TimestampMixin, db.Model):
    __tablename__ = "payments"
    __table_args__ = (
        one_of("status", PaymentStatus),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= amount", name="refund_within_amount"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    refunded_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    status: Mapped[str] = mapped_column(String(20), default=PaymentStatus.PENDING)
    gateway: Mapped[str] = mapped_column(String(20), default="simulated")
    failure_message: Mapped[str | None] = mapped_column(Text)
    # A cancelled payment's intent is cancelled at the gateway after the commit; until that
    # call succeeds (stamped here) the retry job tries again, counting and noting failures.
    intent_cancelled_at: Mapped[datetime | None] = Timestamp(nullable=True)
    intent_cancel_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    intent_cancel_error: Mapped[str | None] = mapped_column(Text)
    # Where the customer must go to finish paying (3-D Secure) while the intent requires
    # action: the simulated gateway keeps its intent's state here, a Stripe intent's is noted.
    next_action_url: Mapped[str | None] = mapped_column(Text)

    order: Mapped[Order] = relationship(back_populates="payments")
    refunds: Mapped[list[PaymentRefund]] = relationship(
        back_populates="payment", cascade="all, delete-orphan", order_by="PaymentRefund.id"
    )


class PaymentRefund(db.Model):
    """A refund decided by us (or found made at the gateway): recorded before the gateway is
    asked, so the recorded row drives retries and a crash in between loses nothing."""

    __tablename__ = "refunds"
    __table_args__ = (
        one_of("status", RefundStatus),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_refunds_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(String(20), default=RefundStatus.REQUESTED)
    gateway_refund_id: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = Timestamp(nullable=True)

    payment: Mapped[Payment] = relationship(back_populates="refunds")

    @property
    def idempotency_key(self) -> str:
        """The gateway's idempotency key for this refund: a retry never refunds twice."""
        return f"refund-{self.id}"


class StripeEvent(db.Model):
    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's event id
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)
    processed_at: Mapped[datetime | None] = Timestamp(nullable=True)


class IdempotencyKey(db.Model):
    """The first answer to a request sent with an ``Idempotency-Key`` header: a signed-in
    shopper's keys are theirs (``user_id``), a guest's belong to the guest cart's token."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        UniqueConstraint("cart_token", "key"),
        CheckConstraint("(user_id IS NULL) <> (cart_token IS NULL)", name="one_owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    cart_token: Mapped[str | None] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)


class RefundLine(db.Model):
    """What a refund paid back for: ``quantity`` units of an order line, or (no order line)
    the shipping. A line's units refunded so far drive its next share
    (``ecom.pricing.shares.refundable_share``), so line refunds add up to what was paid."""

    __tablename__ = "refund_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    # None: the shipping.
    order_item_id: Mapped[int | None] = mapped_column(ForeignKey("order_items.id", ondelete="CASCADE"),
                                                      index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)

    refund: Mapped[PaymentRefund | None] = relationship()
    order_item: Mapped[OrderItem | None] = relationship()


class Return(TimestampMixin, db.Model):
    """A shopper's return (RMA) of some units of a delivered order (ecom.commerce.returns)."""

    __tablename__ = "returns"
    __table_args__ = (
        one_of("status", ReturnStatus),
        Index("ix_returns_status_created", "status", "created_at"),
        # Back-office lists (migration 0013): each ends in the id, so a page is read off it.
        Index("ix_returns_created_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rma_number: Mapped[str] = mapped_column(String(40), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=ReturnStatus.REQUESTED)
    requested_by: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")  # why rejected or closed
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id", ondelete="SET NULL"))
    refund_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    approved_at: Mapped[datetime | None] = Timestamp(nullable=True)
    received_at: Mapped[datetime | None] = Timestamp(nullable=True)
    refunded_at: Mapped[datetime | None] = Timestamp(nullable=True)

    order: Mapped[Order] = relationship()
    refund: Mapped[PaymentRefund | None] = relationship()
    lines: Mapped[list[ReturnLine]] = relationship(
        back_populates="return_", cascade="all, delete-orphan", order_by="ReturnLine.id")


class ReturnLine(db.Model):
    __tablename__ = "return_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        one_of("condition", ReturnCondition),
        # Received lines know what happened to them: restocked or written off, and where.
        UniqueConstraint("return_id", "order_item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    order_item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    condition: Mapped[str | None] = mapped_column(String(20))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("stock_locations.id"))
    refund_amount: Mapped[Decimal | None] = mapped_column(MONEY)

    return_: Mapped[Return] = relationship(back_populates="lines")
    order_item: Mapped[OrderItem] = relationship()
    location = relationship("StockLocation")
