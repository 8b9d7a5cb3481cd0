"""trigram indexes for the other back-office searches that grow with the shop

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

0003 indexed the product and order searches. The lists that also grow with
the shop - users, the fulfillment queue, variants (and the inventory list,
which searches through the variant) - search ``ILIKE '%term%'`` over columns a
B-tree cannot serve; a search ORs its columns, so each one needs its index or
the whole table is scanned anyway. The notification and audit logs are left
out on purpose: they are written on every delivery and every back-office
change, and a GIN index would tax those writes for a rarely used search.
PostgreSQL only, built CONCURRENTLY as in 0003 (listed in ``ecom.db.MIGRATION_ONLY``).
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = (
    ("ix_users_email_trgm", "users", "email"),
    ("ix_users_full_name_trgm", "users", "full_name"),
    ("ix_fulfillments_order_number_trgm", "fulfillments", "order_number"),
    ("ix_fulfillments_tracking_number_trgm", "fulfillments", "tracking_number"),
    ("ix_variants_name_trgm", "variants", "name"),
)


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, column in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} USING gin ({column} gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in TRIGRAM_INDEXES:
            op.drop_index(name)
