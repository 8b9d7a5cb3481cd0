"""guest checkout and 3-D Secure: orders without a user, order tokens, guest idempotency
keys, and the payment's pending customer action

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02

A guest order has no user (``orders.user_id`` becomes nullable) and keeps the
SHA-256 of its order token (the token itself is shown once), the cart that
placed it and the client address it came from (the per-address cap on open
unpaid guest orders). A guest's ``Idempotency-Key`` belongs to the guest cart's
token, so ``idempotency_keys`` has either a user or a cart token.
``payments.next_action_url`` is where the customer must go to finish a payment
that requires action (3-D Secure). Existing rows need no change.
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("order_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("cart_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("client_ip", sa.String(length=45), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_orders_cart_id_carts"), "carts", ["cart_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_index("ix_orders_client_ip_status", ["client_ip", "status"], unique=False)

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_action_url", sa.Text(), nullable=True))

    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("cart_token", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_idempotency_keys_cart_token_key"),
                                          ["cart_token", "key"])
        batch_op.create_check_constraint(batch_op.f("ck_idempotency_keys_one_owner"),
                                         "(user_id IS NULL) <> (cart_token IS NULL)")


def downgrade():
    op.execute("DELETE FROM idempotency_keys WHERE user_id IS NULL")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_idempotency_keys_one_owner"), type_="check")
        batch_op.drop_constraint(batch_op.f("uq_idempotency_keys_cart_token_key"), type_="unique")
        batch_op.drop_column("cart_token")
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("next_action_url")

    # Guest orders cannot survive without a user: the downgrade refuses rather than delete them.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_client_ip_status")
        batch_op.drop_constraint(batch_op.f("fk_orders_cart_id_carts"), type_="foreignkey")
        batch_op.drop_column("client_ip")
        batch_op.drop_column("cart_id")
        batch_op.drop_column("order_token_hash")
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
