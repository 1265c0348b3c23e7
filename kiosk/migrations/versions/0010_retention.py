"""retention: how many months the readers' traces are kept (kiosk purge)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 10:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN on both databases: the consortium row keeps its settings trigger (0008).
    op.add_column('consortium', sa.Column('retention_months', sa.Integer(), server_default='24', nullable=False))


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite's own DROP COLUMN (3.35+): a batch rebuild of consortium would trip over the
        # settings triggers of the other tables, which name it (0008), and drop its own.
        op.execute("ALTER TABLE consortium DROP COLUMN retention_months")
        return
    op.drop_column('consortium', 'retention_months')
