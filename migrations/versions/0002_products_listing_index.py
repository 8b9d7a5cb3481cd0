"""index for the storefront's default product listing order

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(
            "ix_products_listing",
            ["is_active", "featured", "created_at", "id"],
            unique=False,
        )


def downgrade():
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index("ix_products_listing")
