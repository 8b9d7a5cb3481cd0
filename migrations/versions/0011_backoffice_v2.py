"""back office 2: staff invitation and password-reset emails, uploaded product images, audit labels, staff time zones, customer notes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

``product_images`` gains what an upload knows (storage key, type, size, dimensions) and its
thumbnails' keys; images given by URL keep only ``url``. ``audit_log.label`` names the record
as people know it (order number, SKU, email) and outlives it. ``users.time_zone`` is the zone
the back office shows that user's dates in. ``customer_notes`` holds staff notes on customers.
"""
import sqlalchemy as sa
from alembic import op

# Before: the types after 0008 (stock locations added ORDER_READY_FOR_PICKUP).
OLD_EVENT_TYPES = ("type IN ('ORDER_PLACED', 'ORDER_PAID', 'ORDER_SHIPPED', 'ORDER_READY_FOR_PICKUP', "
                   "'ORDER_DELIVERED', 'ORDER_CANCELLED', 'PAYMENT_FAILED', 'PAYMENT_REFUNDED', 'LOW_STOCK')")
NEW_EVENT_TYPES = ("type IN ('ORDER_PLACED', 'ORDER_PAID', 'ORDER_SHIPPED', 'ORDER_READY_FOR_PICKUP', "
                   "'ORDER_DELIVERED', 'ORDER_CANCELLED', 'PAYMENT_FAILED', 'PAYMENT_REFUNDED', 'LOW_STOCK', "
                   "'STAFF_INVITED', 'PASSWORD_RESET')")

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_events_type_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_events_type_valid"), NEW_EVENT_TYPES)
    with op.batch_alter_table("product_images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_key", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("content_type", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("byte_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("thumbnails", sa.JSON(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_product_images_storage_key"), ["storage_key"])
    op.execute("UPDATE product_images SET thumbnails = '{}'")
    with op.batch_alter_table("product_images", schema=None) as batch_op:
        batch_op.alter_column("thumbnails", existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("label", sa.String(length=255), server_default="", nullable=False))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.create_table(
        "customer_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(body) > 0", name=op.f("ck_customer_notes_body_not_empty")),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_customer_notes_author_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_customer_notes_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_notes")),
    )
    with op.batch_alter_table("customer_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_notes_user_id"), ["user_id"], unique=False)


def downgrade():
    op.execute("DELETE FROM outbox_events WHERE type IN ('STAFF_INVITED', 'PASSWORD_RESET')")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_events_type_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_events_type_valid"), OLD_EVENT_TYPES)
    with op.batch_alter_table("customer_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_notes_user_id"))
    op.drop_table("customer_notes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("label")
    with op.batch_alter_table("product_images", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_product_images_storage_key"), type_="unique")
        for column in ("thumbnails", "height", "width", "byte_size", "content_type", "storage_key"):
            batch_op.drop_column(column)
