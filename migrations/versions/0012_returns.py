"""returns and refunds by line: returns (RMAs), their lines, refund lines; order status
``returned``; the four return events

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

``refund_lines`` say what a refund paid back (units of an order line, or the shipping), so a
line's next share counts the units refunded before.
"""
import sqlalchemy as sa
from alembic import op

OLD_ORDER_STATUSES = ("status IN ('created', 'paid', 'packed', 'partially_shipped', 'shipped', "
                      "'ready_for_pickup', 'delivered', 'cancelled')")
NEW_ORDER_STATUSES = ("status IN ('created', 'paid', 'packed', 'partially_shipped', 'shipped', "
                      "'ready_for_pickup', 'delivered', 'cancelled', 'returned')")
OLD_EVENT_TYPES = ("type IN ('ORDER_PLACED', 'ORDER_PAID', 'ORDER_SHIPPED', 'ORDER_READY_FOR_PICKUP', "
                   "'ORDER_DELIVERED', 'ORDER_CANCELLED', 'PAYMENT_FAILED', 'PAYMENT_REFUNDED', 'LOW_STOCK', "
                   "'STAFF_INVITED', 'PASSWORD_RESET')")
NEW_EVENT_TYPES = ("type IN ('ORDER_PLACED', 'ORDER_PAID', 'ORDER_SHIPPED', 'ORDER_READY_FOR_PICKUP', "
                   "'ORDER_DELIVERED', 'ORDER_CANCELLED', 'PAYMENT_FAILED', 'PAYMENT_REFUNDED', 'LOW_STOCK', "
                   "'STAFF_INVITED', 'PASSWORD_RESET', 'RETURN_REQUESTED', 'RETURN_APPROVED', "
                   "'RETURN_REJECTED', 'RETURN_REFUNDED')")
MONEY = sa.Numeric(precision=12, scale=2)

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_status_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_orders_status_valid"), NEW_ORDER_STATUSES)
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_events_type_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_events_type_valid"), NEW_EVENT_TYPES)
    op.create_table(
        "refund_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("refund_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_item_id", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_refund_lines_quantity_positive")),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_refund_lines_amount_not_negative")),
        sa.ForeignKeyConstraint(["refund_id"], ["refunds.id"], name=op.f("fk_refund_lines_refund_id_refunds"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_refund_lines_order_id_orders"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["order_item_id"], ["order_items.id"],
                                name=op.f("fk_refund_lines_order_item_id_order_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_lines")),
    )
    with op.batch_alter_table("refund_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refund_lines_refund_id"), ["refund_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refund_lines_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refund_lines_order_item_id"), ["order_item_id"], unique=False)
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rma_number", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("refund_id", sa.Integer(), nullable=True),
        sa.Column("refund_amount", MONEY, nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('requested', 'approved', 'rejected', 'received', 'refunded', 'closed')",
                           name=op.f("ck_returns_status_valid")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_returns_order_id_orders"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["refund_id"], ["refunds.id"], name=op.f("fk_returns_refund_id_refunds"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
        sa.UniqueConstraint("rma_number", name=op.f("uq_returns_rma_number")),
    )
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_returns_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_returns_status_created", ["status", "created_at"], unique=False)
    op.create_table(
        "return_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("return_id", sa.Integer(), nullable=False),
        sa.Column("order_item_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("condition", sa.String(length=20), nullable=True),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("refund_amount", MONEY, nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_return_lines_quantity_positive")),
        sa.CheckConstraint("condition IN ('restock', 'damaged')", name=op.f("ck_return_lines_condition_valid")),
        sa.ForeignKeyConstraint(["return_id"], ["returns.id"], name=op.f("fk_return_lines_return_id_returns"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["order_item_id"], ["order_items.id"],
                                name=op.f("fk_return_lines_order_item_id_order_items"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["location_id"], ["stock_locations.id"],
                                name=op.f("fk_return_lines_location_id_stock_locations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_lines")),
        sa.UniqueConstraint("return_id", "order_item_id", name=op.f("uq_return_lines_return_id_order_item_id")),
    )
    with op.batch_alter_table("return_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_return_lines_return_id"), ["return_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_return_lines_order_item_id"), ["order_item_id"], unique=False)


def downgrade():
    op.drop_table("return_lines")
    op.drop_table("returns")
    op.drop_table("refund_lines")
    op.execute("DELETE FROM outbox_events WHERE type LIKE 'RETURN_%'")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_events_type_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_events_type_valid"), OLD_EVENT_TYPES)
    op.execute("UPDATE orders SET status = 'delivered' WHERE status = 'returned'")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_status_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_orders_status_valid"), OLD_ORDER_STATUSES)
