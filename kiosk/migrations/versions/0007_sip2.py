"""SIP2: a library's live card check against its library system

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 15:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('libraries') as batch_op:
        batch_op.drop_constraint(op.f('ck_libraries_card_check_kind'), type_='check')
        batch_op.create_check_constraint('card_check_kind', "card_check IN ('format', 'registry', 'sip2')")
    op.create_table(
        'sip2_settings',
        sa.Column('library_id', sa.Integer(), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('tls', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('ca_file', sa.String(length=500), nullable=True),
        sa.Column('login_user', sa.String(length=100), nullable=True),
        sa.Column('password_sealed', sa.Text(), nullable=True),
        sa.Column('institution', sa.String(length=100), server_default='', nullable=False),
        sa.Column('location', sa.String(length=100), nullable=True),
        sa.Column('encoding', sa.String(length=10), server_default='utf-8', nullable=False),
        sa.Column('timeout_ms', sa.Integer(), server_default='3000', nullable=False),
        sa.Column('on_failure', sa.String(length=10), server_default='refuse', nullable=False),
        sa.Column('require_pin', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(['library_id'], ['libraries.id'],
                                name=op.f('fk_sip2_settings_library_id_libraries')),
        sa.PrimaryKeyConstraint('library_id', name=op.f('pk_sip2_settings')),
        sa.CheckConstraint("on_failure IN ('refuse', 'registry')", name=op.f('ck_sip2_settings_on_failure')),
    )


def downgrade():
    op.drop_table('sip2_settings')
    # Without SIP2, the imported card register is the nearest check; "format" would let
    # any well-formed number through.
    op.execute("UPDATE libraries SET card_check = 'registry' WHERE card_check = 'sip2'")
    with op.batch_alter_table('libraries') as batch_op:
        batch_op.drop_constraint(op.f('ck_libraries_card_check_kind'), type_='check')
        batch_op.create_check_constraint('card_check_kind', "card_check IN ('format', 'registry')")
