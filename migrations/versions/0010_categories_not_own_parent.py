"""categories: a category is never its own parent (CHECK parent_id <> id)

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02

The catalog service refuses a move under the category itself or one of its
subcategories (locking the new parent's ancestors); this constraint is the
database's own guard for the direct case, whoever writes the row. A row that
already points at itself is detached first (its parent cleared), which the
storefront showed as a root anyway.
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(sa.text("UPDATE categories SET parent_id = NULL WHERE parent_id = id"))
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.create_check_constraint(op.f("ck_categories_not_own_parent"), "parent_id IS NULL OR parent_id <> id")


def downgrade():
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_categories_not_own_parent"), type_="check")
