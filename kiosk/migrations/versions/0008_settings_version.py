"""settings version: a token every change to the settings the issuing path caches replaces

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 17:45:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consortium') as batch_op:
        batch_op.add_column(sa.Column('settings_version', sa.String(length=32), server_default='0',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('consortium') as batch_op:
        batch_op.drop_column('settings_version')
