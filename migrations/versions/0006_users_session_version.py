"""users.session_version: back-office sessions and API tokens that can be revoked

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Sessions and tokens carry the user's session version; bumping it (sign-out,
password change or reset, deactivation) ends all of them. Existing users start
at 0; sessions and tokens issued before this migration carry no version and
are refused, so everybody signs in once more.
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_version")
