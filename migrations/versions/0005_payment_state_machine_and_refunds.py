"""payment state machine: cancelled and partially_refunded payments, recorded refunds,
recorded intent cancellations, and the kind of each order history row

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Gateway calls now run after the commit that decided them, driven by what was
recorded: ``refunds`` holds every refund (requested, then succeeded or failed,
with attempts and the last error); a cancelled payment's intent cancellation is
pending until ``payments.intent_cancelled_at`` is stamped. ``order_events.kind``
tells an order's own status change from a payment or fulfillment change.

Existing unpaid payments of cancelled orders become ``cancelled`` with their
intent cancellation counted as done (it was attempted, best effort, when the
order was cancelled); partly refunded completed payments become
``partially_refunded``.
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD_PAYMENT_STATUSES = "status IN ('pending', 'completed', 'failed', 'refunded')"
NEW_PAYMENT_STATUSES = ("status IN ('pending', 'completed', 'failed', 'cancelled', "
                        "'partially_refunded', 'refunded')")


def upgrade():
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("gateway_refund_id", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('requested', 'succeeded', 'failed')", name=op.f("ck_refunds_status_valid")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_payment_id"), ["payment_id"], unique=False)
        batch_op.create_index("ix_refunds_status_id", ["status", "id"], unique=False)

    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=20), server_default="order", nullable=False))
        batch_op.create_check_constraint(op.f("ck_order_events_kind_valid"),
                                         "kind IN ('order', 'payment', 'fulfillment')")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("intent_cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("intent_cancel_attempts", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.add_column(sa.Column("intent_cancel_error", sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f("ck_payments_status_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_payments_status_valid"), NEW_PAYMENT_STATUSES)

    op.execute(
        "UPDATE payments SET status = 'cancelled', intent_cancelled_at = updated_at "
        "WHERE status IN ('pending', 'failed') "
        "AND order_id IN (SELECT id FROM orders WHERE status = 'cancelled')"
    )
    op.execute(
        "UPDATE payments SET status = 'partially_refunded' "
        "WHERE status = 'completed' AND refunded_amount > 0"
    )


def downgrade():
    op.execute("UPDATE payments SET status = 'completed' WHERE status = 'partially_refunded'")
    op.execute("UPDATE payments SET status = 'failed' WHERE status = 'cancelled'")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_payments_status_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_payments_status_valid"), OLD_PAYMENT_STATUSES)
        batch_op.drop_column("intent_cancel_error")
        batch_op.drop_column("intent_cancel_attempts")
        batch_op.drop_column("intent_cancelled_at")

    # Payment and fulfillment history rows did not exist before; kept, they would read as order changes.
    op.execute("DELETE FROM order_events WHERE kind <> 'order'")
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_order_events_kind_valid"), type_="check")
        batch_op.drop_column("kind")

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_status_id")
        batch_op.drop_index(batch_op.f("ix_refunds_payment_id"))
    op.drop_table("refunds")
