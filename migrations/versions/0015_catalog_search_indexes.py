"""the storefront's filtered lists: variant attributes as jsonb, an index of available stock

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

Written beside 0014 (back-office indexes) and chained after it at the merge; it touches
nothing 0014 does.

- ``variants.attributes`` becomes ``jsonb`` on PostgreSQL: every ``attributes ->> 'size'`` of
  the attribute filter and every ``jsonb_each_text`` of the attribute facet read the stored
  binary form instead of parsing each variant's JSON text again (the filter's scan of the
  bench's 6 000 variants: 7.0 ms of PostgreSQL CPU on json, 3.25 ms on jsonb). The rewrite takes the table's exclusive lock while it copies
  the rows (0.3 s for the bench's 6 000 variants on a loaded 2-core machine); SQLite keeps its
  JSON column.
- ``ix_inventory_variant_available``: the inventory rows with a unit available
  (``quantity > reserved``, how ``Inventory.has_available`` spells it so the planner can match
  the predicate), by variant and location. The ``in_stock`` filter and the listing's stock
  flag read it index-only instead of fetching every inventory row to test it. Built
  ``CONCURRENTLY`` on PostgreSQL, as 0013's, after dropping what an interrupted build left.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

AVAILABLE = "quantity > reserved"
INDEX = "ix_inventory_variant_available"


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(INDEX, "inventory", ["variant_id", "location_id"], sqlite_where=sa.text(AVAILABLE))
        return
    op.alter_column("variants", "attributes", type_=postgresql.JSONB(), existing_type=sa.JSON(),
                    postgresql_using="attributes::jsonb")
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        op.create_index(INDEX, "inventory", ["variant_id", "location_id"], postgresql_concurrently=True,
                        postgresql_where=sa.text(AVAILABLE))


def downgrade():
    op.drop_index(INDEX, table_name="inventory")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("variants", "attributes", type_=sa.JSON(), existing_type=postgresql.JSONB(),
                        postgresql_using="attributes::json")
