"""indexes for the back office's exact-match searches (an email or tracking number typed
whole) and for counting the uses a page of promotions holds

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

The orders and fulfillment searches look for the term typed whole first
(``admin.base.ExactFirstSearch``) and fall back to ``ILIKE '%term%'`` through the trigram
indexes only when nothing matched that way: at a million orders of similar emails
(``customerN@...``) the trigram posting lists are a million long, where a B-tree finds one
email in a few page reads. Order numbers already have their unique B-trees (a prefix range);
these are the other two columns the fast path compares: the email lower-cased (a clerk types
it in any case) and the tracking number.

The promotions list counts the uses each of its promotions holds (``released_at IS NULL``);
a popular promotion's uses lie on every page of the table, so the count read thousands of
heap pages. A partial index holding the promotion and the id counts them index-only.

On PostgreSQL they are built ``CONCURRENTLY`` as in 0003 and 0013, so a shop keeps taking
orders while they build; a re-run first drops what an interrupted build may have left.
Then ``orders`` is analysed: statistics of an expression index exist only after ANALYZE.
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

HELD = "released_at IS NULL"
# (name, table, columns or expressions, partial index condition or None)
INDEXES = (
    ("ix_orders_email_lower", "orders", [sa.text("lower(email)")], None),
    ("ix_fulfillments_tracking_number", "fulfillments", ["tracking_number"], None),
    ("ix_promotion_uses_held", "promotion_uses", ["promotion_id", "id"], HELD),
)


def _where(condition: str | None) -> dict:
    if condition is None:
        return {}
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        for name, table, columns, condition in INDEXES:
            op.create_index(name, table, columns, **_where(condition))
        return
    with op.get_context().autocommit_block():
        for name, table, columns, condition in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.create_index(name, table, columns, postgresql_concurrently=True, **_where(condition))
        # The planner knows how lower(email) is spread only once ANALYZE has sampled the new
        # expression index; until then it guesses 0.5 % of a million orders match an email and
        # walks the newest-first index past every order instead (seconds, not milliseconds).
        op.execute("ANALYZE orders")


def downgrade():
    for name, table, _, _ in INDEXES:
        op.drop_index(name, table_name=table)
