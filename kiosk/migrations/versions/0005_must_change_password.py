"""must change password: a generated password is changed at the first sign-in

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 11:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff_users') as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('staff_users') as batch_op:
        batch_op.drop_column('must_change_password')
