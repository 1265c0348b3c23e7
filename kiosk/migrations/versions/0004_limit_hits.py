"""limit hits: rate limits in a table of their own, not read from the event log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:30:00

"""
from alembic import op
import sqlalchemy as sa

import kiosk.storage.models

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'limit_hits',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('subject', sa.String(length=120), nullable=False),
        sa.Column('at', kiosk.storage.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_limit_hits')),
    )
    op.create_index('ix_limit_hits_kind_subject_at', 'limit_hits', ['kind', 'subject', 'at'], unique=False)


def downgrade():
    op.drop_index('ix_limit_hits_kind_subject_at', table_name='limit_hits')
    op.drop_table('limit_hits')
