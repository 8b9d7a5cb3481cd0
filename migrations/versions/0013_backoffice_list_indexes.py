"""indexes for the back office's lists at 100 000 products, 1 000 000 orders, three locations

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Indexes only. Each serves a list page's default sort or a common filter or sort
(``python -m bench.admin_bench``): the rows come off the index in the list's order,
and each ends in the id as the lists' sorts do (``StaffModelView._apply_sorting``), so
a first page reads 20 index entries instead of sorting the table and a later page's
ids are an index-only scan. The fulfillment queue and the notifications are ranked by
status and paged one status at a time (``admin.base.ranked_page``): their
``(status, created_at)`` indexes gain the id, and the queue's per-location index the
date and the id. The guest-orders filter gets a partial index (guest orders are few, and
a filter that matches few rows otherwise scans every order).

On PostgreSQL they are built ``CONCURRENTLY`` as in 0003, so a shop keeps taking orders
while they build over its big tables; a re-run first drops what an interrupted build may
have left (an INVALID index).
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

GUEST = "order_token_hash IS NOT NULL"
# (name, table, columns, partial index condition or None)
INDEXES = (
    ("ix_products_updated_id", "products", ["updated_at", "id"], None),
    ("ix_products_name_id", "products", ["name", "id"], None),
    ("ix_variants_price_id", "variants", ["price", "id"], None),
    ("ix_reviews_created_id", "reviews", ["created_at", "id"], None),
    ("ix_users_created_id", "users", ["created_at", "id"], None),
    ("ix_users_role_created_id", "users", ["role", "created_at", "id"], None),
    ("ix_users_role_last_login_id", "users", ["role", "last_login_at", "id"], None),
    ("ix_orders_guest_created_id", "orders", ["created_at", "id"], GUEST),
    ("ix_returns_created_id", "returns", ["created_at", "id"], None),
    ("ix_inventory_location_id_id", "inventory", ["location_id", "id"], None),
    ("ix_inventory_quantity_id", "inventory", ["quantity", "id"], None),
    ("ix_stock_reservations_expires_id", "stock_reservations", ["expires_at", "id"], None),
    ("ix_stock_reservations_location_expires_id", "stock_reservations", ["location_id", "expires_at", "id"],
     None),
    ("ix_stock_movements_reason_created_id", "stock_movements", ["reason", "created_at", "id"], None),
    ("ix_fulfillments_status_created_id", "fulfillments", ["status", "created_at", "id"], None),
    ("ix_fulfillments_location_status_created_id", "fulfillments",
     ["location_id", "status", "created_at", "id"], None),
    ("ix_fulfillments_created_id", "fulfillments", ["created_at", "id"], None),
    ("ix_notifications_status_created_id", "notifications", ["status", "created_at", "id"], None),
    ("ix_audit_log_action_created_id", "audit_log", ["action", "created_at", "id"], None),
    ("ix_audit_log_actor_created_id", "audit_log", ["actor", "created_at", "id"], None),
)
# The audit log's search (a record's label, ILIKE '%term%'): a GIN trigram index, PostgreSQL
# only (ecom.db.TRIGRAM_INDEXES), like 0003's. The log is written once per back-office change.
TRIGRAM_INDEXES = (("ix_audit_log_label_trgm", "audit_log", "label"),)
# Made redundant by the ones above (each is a prefix of a new one): (name, table, columns).
REPLACED = (
    ("ix_inventory_location_id", "inventory", ["location_id"]),
    ("ix_fulfillments_status_created", "fulfillments", ["status", "created_at"]),
    ("ix_fulfillments_location_status", "fulfillments", ["location_id", "status"]),
    ("ix_notifications_status_created", "notifications", ["status", "created_at"]),
)


def _where(condition: str | None) -> dict:
    if condition is None:
        return {}
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        for name, table, columns, condition in INDEXES:
            op.create_index(name, table, columns, **_where(condition))
        for name, table, _ in REPLACED:
            op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        for name, table, columns, condition in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.create_index(name, table, columns, postgresql_concurrently=True, **_where(condition))
        for name, table, _ in REPLACED:
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, column in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} USING gin ({column} gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in TRIGRAM_INDEXES:
            op.drop_index(name)
    for name, table, columns in REPLACED:
        op.create_index(name, table, columns)
    for name, table, _, _ in INDEXES:
        op.drop_index(name, table_name=table)
