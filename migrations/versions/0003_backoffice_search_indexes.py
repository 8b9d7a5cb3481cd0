"""trigram indexes for the back office's searches; order list indexes that carry the id

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The back office searches with ``ILIKE '%term%'``, which no B-tree can serve: on
PostgreSQL each searched column gets a GIN trigram index (pg_trgm), which
``ILIKE`` with a leading wildcard can use. These exist only on PostgreSQL and
are listed in ``ecom.db.MIGRATION_ONLY``; SQLite scans, as before.

The order list's sorts that a page can ask of a million orders (newest first,
newest first within a status, by total, by payment time) get B-trees ending in
the primary key, so a first page is read off the index rather than sorted and
a deep page finds its twenty ids by an index-only scan instead of fetching
every skipped row (see ``admin.base.StaffModelView._apply_pagination``). The
first two replace the indexes without the id, of which they are a superset.
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (index, table, column): every column a back-office list searches with ILIKE '%term%'.
TRIGRAM_INDEXES = (
    ("ix_products_name_trgm", "products", "name"),
    ("ix_products_slug_trgm", "products", "slug"),
    ("ix_variants_sku_trgm", "variants", "sku"),
    ("ix_orders_order_number_trgm", "orders", "order_number"),
    ("ix_orders_email_trgm", "orders", "email"),
)
# B-trees on orders: (name, columns) made, then (name, columns) they make redundant.
ORDER_INDEXES = (
    ("ix_orders_created_id", ["created_at", "id"]),
    ("ix_orders_status_created_id", ["status", "created_at", "id"]),
    ("ix_orders_total_id", ["total", "id"]),
    ("ix_orders_paid_id", ["paid_at", "id"]),
)
REPLACED_ORDER_INDEXES = (
    ("ix_orders_created_at", ["created_at"]),
    ("ix_orders_status_created", ["status", "created_at"]),
)


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        for name, columns in ORDER_INDEXES:
            op.create_index(name, "orders", columns)
        for name, _ in REPLACED_ORDER_INDEXES:
            op.drop_index(name, table_name="orders")
        return
    # CONCURRENTLY, so orders keep being placed while the indexes build over a
    # large table (a plain CREATE INDEX blocks every write to it until done). It
    # cannot run inside a transaction; should the run stop half way, a re-run
    # first drops what an interrupted build may have left (an INVALID index).
    with op.get_context().autocommit_block():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, column in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} USING gin ({column} gin_trgm_ops)")
        for name, columns in ORDER_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.create_index(name, "orders", columns, postgresql_concurrently=True)
        for name, _ in REPLACED_ORDER_INDEXES:
            op.drop_index(name, table_name="orders", postgresql_concurrently=True, if_exists=True)


def downgrade():
    # The pg_trgm extension stays: something else may have come to use it.
    for name, columns in REPLACED_ORDER_INDEXES:
        op.create_index(name, "orders", columns)
    for name, _ in ORDER_INDEXES:
        op.drop_index(name, table_name="orders")
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in TRIGRAM_INDEXES:
            op.drop_index(name)
