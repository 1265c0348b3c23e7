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

SQLITE_BUMP = "UPDATE consortium SET settings_version = lower(hex(randomblob(8)))"


def upgrade():
    # Plain ADD COLUMN on both databases: the consortium row keeps its settings trigger (0008).
    op.add_column('consortium', sa.Column('retention_months', sa.Integer(), server_default='24', nullable=False))


def downgrade():
    with op.batch_alter_table('consortium') as batch_op:
        batch_op.drop_column('retention_months')
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite's rebuild of the consortium table dropped its settings trigger (0008): made again.
        op.execute("CREATE TRIGGER IF NOT EXISTS settings_changed_consortium AFTER UPDATE OF "
                   f"name, service_end, pepper_check ON consortium BEGIN {SQLITE_BUMP}; END")
