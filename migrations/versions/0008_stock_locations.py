"""stock locations: per-location inventory, reservations and ledger; split and pickup
fulfillments; transfers and purchase orders

Revision ID: 0008
Revises: 0009
Create Date: 2026-12-02

Today's single stock pool becomes the default warehouse ``MAIN`` (priority 10,
ships orders): every inventory row, reservation, ledger movement and
fulfillment moves there, so no unit and no ledger row is lost, and each
variant's ledger still sums to its on-hand quantity at that location.
An order's fulfillment becomes one per location (``fulfillment_lines`` name the
units each sends; existing fulfillments get every line of their order).
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD_ORDER_STATUSES = "status IN ('created', 'paid', 'packed', 'shipped', 'delivered', 'cancelled')"
NEW_ORDER_STATUSES = ("status IN ('created', 'paid', 'packed', 'partially_shipped', 'shipped', "
                      "'ready_for_pickup', 'delivered', 'cancelled')")
OLD_FULFILLMENT_STATUSES = "status IN ('pending', 'processing', 'packed', 'shipped', 'delivered', 'cancelled')"
NEW_FULFILLMENT_STATUSES = ("status IN ('pending', 'processing', 'packed', 'shipped', 'delivered', "
                            "'ready_for_pickup', 'picked_up', 'cancelled')")
PICKUP_STEPS = ("(is_pickup AND status NOT IN ('packed', 'shipped', 'delivered')) "
                "OR (NOT is_pickup AND status NOT IN ('ready_for_pickup', 'picked_up'))")
OLD_REASONS = "reason IN ('received', 'adjustment', 'sale', 'return', 'damage', 'correction')"
NEW_REASONS = ("reason IN ('received', 'adjustment', 'sale', 'return', 'damage', 'correction', "
               "'transfer_out', 'transfer_in')")
OLD_EVENT_TYPES = ("type IN ('ORDER_PLACED', 'ORDER_PAID', 'ORDER_SHIPPED', 'ORDER_DELIVERED', 'ORDER_CANCELLED', "
                   "'PAYMENT_FAILED', 'PAYMENT_REFUNDED', 'LOW_STOCK')")
NEW_EVENT_TYPES = ("type IN ('ORDER_PLACED', 'ORDER_PAID', 'ORDER_SHIPPED', 'ORDER_READY_FOR_PICKUP', "
                   "'ORDER_DELIVERED', 'ORDER_CANCELLED', 'PAYMENT_FAILED', 'PAYMENT_REFUNDED', 'LOW_STOCK')")
MAIN = "(SELECT id FROM stock_locations WHERE code = 'MAIN')"


def upgrade():
    op.create_table(
        "stock_locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("ships_orders", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("accepts_pickup", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="100", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('warehouse', 'store')", name=op.f("ck_stock_locations_kind_valid")),
        sa.CheckConstraint("kind = 'store' OR store_id IS NULL", name=op.f("ck_stock_locations_store_only_for_stores")),
        sa.CheckConstraint("NOT accepts_pickup OR store_id IS NOT NULL",
                           name=op.f("ck_stock_locations_pickup_needs_store")),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_stock_locations_store_id_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_locations")),
        sa.UniqueConstraint("code", name=op.f("uq_stock_locations_code")),
        sa.UniqueConstraint("store_id", name=op.f("uq_stock_locations_store_id")),
    )
    op.execute(
        "INSERT INTO stock_locations (code, name, kind, address, ships_orders, accepts_pickup, priority, "
        "is_active, created_at, updated_at) VALUES ('MAIN', 'Main warehouse', 'warehouse', '', true, false, "
        "10, true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )

    # Every existing row lives at the default warehouse.
    for table in ("inventory", "stock_reservations", "stock_movements", "fulfillments"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("location_id", sa.Integer(), nullable=True))
        op.execute(f"UPDATE {table} SET location_id = {MAIN}")

    with op.batch_alter_table("inventory", schema=None) as batch_op:
        batch_op.alter_column("location_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(op.f("uq_inventory_variant_id"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_inventory_variant_id_location_id"), ["variant_id", "location_id"])
        batch_op.create_foreign_key(op.f("fk_inventory_location_id_stock_locations"), "stock_locations",
                                    ["location_id"], ["id"])
        batch_op.create_index("ix_inventory_location_id", ["location_id"], unique=False)

    with op.batch_alter_table("stock_reservations", schema=None) as batch_op:
        batch_op.alter_column("location_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(op.f("fk_stock_reservations_location_id_stock_locations"), "stock_locations",
                                    ["location_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_stock_reservations_location_id"), ["location_id"], unique=False)

    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.alter_column("location_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(op.f("fk_stock_movements_location_id_stock_locations"), "stock_locations",
                                    ["location_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_stock_movements_location_id"), ["location_id"], unique=False)
        batch_op.drop_constraint(op.f("ck_stock_movements_reason_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_stock_movements_reason_valid"), NEW_REASONS)

    with op.batch_alter_table("fulfillments", schema=None) as batch_op:
        batch_op.alter_column("location_id", existing_type=sa.Integer(), nullable=False)
        batch_op.add_column(sa.Column("is_pickup", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch_op.add_column(sa.Column("ready_for_pickup_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("picked_up_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f("uq_fulfillments_order_id"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_fulfillments_order_id_location_id"), ["order_id", "location_id"])
        batch_op.create_index(batch_op.f("ix_fulfillments_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_fulfillments_location_status", ["location_id", "status"], unique=False)
        batch_op.create_foreign_key(op.f("fk_fulfillments_location_id_stock_locations"), "stock_locations",
                                    ["location_id"], ["id"])
        batch_op.drop_constraint(op.f("ck_fulfillments_status_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_fulfillments_status_valid"), NEW_FULFILLMENT_STATUSES)
        batch_op.create_check_constraint(op.f("ck_fulfillments_pickup_steps_match_kind"), PICKUP_STEPS)

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_status_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_orders_status_valid"), NEW_ORDER_STATUSES)

    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_events_type_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_events_type_valid"), NEW_EVENT_TYPES)

    op.create_table(
        "fulfillment_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fulfillment_id", sa.Integer(), nullable=False),
        sa.Column("order_item_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_fulfillment_lines_quantity_positive")),
        sa.ForeignKeyConstraint(["fulfillment_id"], ["fulfillments.id"],
                                name=op.f("fk_fulfillment_lines_fulfillment_id_fulfillments"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["order_item_id"], ["order_items.id"],
                                name=op.f("fk_fulfillment_lines_order_item_id_order_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillment_lines")),
        sa.UniqueConstraint("fulfillment_id", "order_item_id", name=op.f("uq_fulfillment_lines_fulfillment_id_order_item_id")),
    )
    with op.batch_alter_table("fulfillment_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fulfillment_lines_order_item_id"), ["order_item_id"], unique=False)
    op.execute(
        "INSERT INTO fulfillment_lines (fulfillment_id, order_item_id, quantity) "
        "SELECT f.id, i.id, i.quantity FROM fulfillments f JOIN order_items i ON i.order_id = f.order_id"
    )

    op.create_table(
        "stock_transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_location_id", sa.Integer(), nullable=False),
        sa.Column("destination_location_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'in_transit', 'received', 'cancelled')",
                           name=op.f("ck_stock_transfers_status_valid")),
        sa.CheckConstraint("source_location_id <> destination_location_id",
                           name=op.f("ck_stock_transfers_different_locations")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_stock_transfers_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["destination_location_id"], ["stock_locations.id"],
                                name=op.f("fk_stock_transfers_destination_location_id_stock_locations")),
        sa.ForeignKeyConstraint(["source_location_id"], ["stock_locations.id"],
                                name=op.f("fk_stock_transfers_source_location_id_stock_locations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_transfers")),
    )
    with op.batch_alter_table("stock_transfers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_transfers_destination_location_id"), ["destination_location_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_stock_transfers_source_location_id"), ["source_location_id"], unique=False)
        batch_op.create_index("ix_stock_transfers_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "stock_transfer_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_stock_transfer_lines_quantity_positive")),
        sa.ForeignKeyConstraint(["transfer_id"], ["stock_transfers.id"],
                                name=op.f("fk_stock_transfer_lines_transfer_id_stock_transfers"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["variant_id"], ["variants.id"],
                                name=op.f("fk_stock_transfer_lines_variant_id_variants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_transfer_lines")),
        sa.UniqueConstraint("transfer_id", "variant_id", name=op.f("uq_stock_transfer_lines_transfer_id_variant_id")),
    )
    with op.batch_alter_table("stock_transfer_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_transfer_lines_variant_id"), ["variant_id"], unique=False)

    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supplier", sa.String(length=200), nullable=False),
        sa.Column("destination_location_id", sa.Integer(), nullable=False),
        sa.Column("expected_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'ordered', 'partially_received', 'received', 'cancelled')",
                           name=op.f("ck_purchase_orders_status_valid")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_purchase_orders_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["destination_location_id"], ["stock_locations.id"],
                                name=op.f("fk_purchase_orders_destination_location_id_stock_locations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_orders")),
    )
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_purchase_orders_destination_location_id"), ["destination_location_id"],
                              unique=False)
        batch_op.create_index("ix_purchase_orders_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "purchase_order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_order_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("quantity_ordered", sa.Integer(), nullable=False),
        sa.Column("quantity_received", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("quantity_ordered > 0", name=op.f("ck_purchase_order_lines_ordered_positive")),
        sa.CheckConstraint("quantity_received >= 0", name=op.f("ck_purchase_order_lines_received_not_negative")),
        sa.ForeignKeyConstraint(["purchase_order_id"], ["purchase_orders.id"],
                                name=op.f("fk_purchase_order_lines_purchase_order_id_purchase_orders"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["variant_id"], ["variants.id"],
                                name=op.f("fk_purchase_order_lines_variant_id_variants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_order_lines")),
        sa.UniqueConstraint("purchase_order_id", "variant_id",
                            name=op.f("uq_purchase_order_lines_purchase_order_id_variant_id")),
    )
    with op.batch_alter_table("purchase_order_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_purchase_order_lines_variant_id"), ["variant_id"], unique=False)


def downgrade():
    """Back to one pool: each variant's rows fold into its row at the first location."""
    op.drop_table("purchase_order_lines")
    op.drop_table("purchase_orders")
    op.drop_table("stock_transfer_lines")
    op.drop_table("stock_transfers")
    op.drop_table("fulfillment_lines")

    keep = "(SELECT min(k.id) FROM inventory k WHERE k.variant_id = inventory.variant_id)"
    op.execute(
        "UPDATE inventory SET quantity = (SELECT sum(s.quantity) FROM inventory s WHERE s.variant_id = inventory.variant_id), "
        "reserved = (SELECT sum(s.reserved) FROM inventory s WHERE s.variant_id = inventory.variant_id) "
        f"WHERE id = {keep}"
    )
    op.execute(f"DELETE FROM inventory WHERE id <> {keep}")
    # One fulfillment per order again: the first.
    op.execute("DELETE FROM fulfillments WHERE id <> (SELECT min(k.id) FROM fulfillments k "
               "WHERE k.order_id = fulfillments.order_id)")
    op.execute("UPDATE orders SET status = 'shipped' WHERE status = 'partially_shipped'")
    op.execute("UPDATE orders SET status = 'packed' WHERE status = 'ready_for_pickup'")
    op.execute("UPDATE fulfillments SET status = 'packed' WHERE status = 'ready_for_pickup'")
    op.execute("UPDATE fulfillments SET status = 'delivered', carrier = coalesce(carrier, 'pickup'), "
               "tracking_number = coalesce(tracking_number, 'pickup') WHERE status = 'picked_up'")
    op.execute("DELETE FROM stock_movements WHERE reason IN ('transfer_out', 'transfer_in')")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_status_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_orders_status_valid"), OLD_ORDER_STATUSES)

    op.execute("DELETE FROM outbox_events WHERE type = 'ORDER_READY_FOR_PICKUP'")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_events_type_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_events_type_valid"), OLD_EVENT_TYPES)

    with op.batch_alter_table("fulfillments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_fulfillments_pickup_steps_match_kind"), type_="check")
        batch_op.drop_constraint(op.f("ck_fulfillments_status_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_fulfillments_status_valid"), OLD_FULFILLMENT_STATUSES)
        batch_op.drop_constraint(op.f("fk_fulfillments_location_id_stock_locations"), type_="foreignkey")
        batch_op.drop_index("ix_fulfillments_location_status")
        batch_op.drop_index(batch_op.f("ix_fulfillments_order_id"))
        batch_op.drop_constraint(op.f("uq_fulfillments_order_id_location_id"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_fulfillments_order_id"), ["order_id"])
        batch_op.drop_column("picked_up_at")
        batch_op.drop_column("ready_for_pickup_at")
        batch_op.drop_column("is_pickup")
        batch_op.drop_column("location_id")

    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stock_movements_reason_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_stock_movements_reason_valid"), OLD_REASONS)
        batch_op.drop_index(batch_op.f("ix_stock_movements_location_id"))
        batch_op.drop_constraint(op.f("fk_stock_movements_location_id_stock_locations"), type_="foreignkey")
        batch_op.drop_column("location_id")

    with op.batch_alter_table("stock_reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_reservations_location_id"))
        batch_op.drop_constraint(op.f("fk_stock_reservations_location_id_stock_locations"), type_="foreignkey")
        batch_op.drop_column("location_id")

    with op.batch_alter_table("inventory", schema=None) as batch_op:
        batch_op.drop_index("ix_inventory_location_id")
        batch_op.drop_constraint(op.f("fk_inventory_location_id_stock_locations"), type_="foreignkey")
        batch_op.drop_constraint(op.f("uq_inventory_variant_id_location_id"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_inventory_variant_id"), ["variant_id"])
        batch_op.drop_column("location_id")

    op.drop_table("stock_locations")
