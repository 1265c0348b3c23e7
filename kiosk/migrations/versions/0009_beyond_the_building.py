"""beyond the building: API keys, idempotent answers, the e-mail outbox, the online
channel, the register's e-mail and the online share of a pool

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 20:40:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

CHANNELS_BEFORE = "channel IN ('kiosk', 'desk', 'api')"
CHANNELS_AFTER = "channel IN ('kiosk', 'desk', 'api', 'online')"
LIVE_READER_INDEX = ('uq_issuances_live_reader_window', ['library_id', 'platform_id', 'reader_key', 'window_start'])


def _channels(check: str) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(op.f('ck_issuances_channel'), 'issuances', type_='check')
        op.create_check_constraint('channel', 'issuances', check)
        return
    # SQLite rebuilds the table for a new check; the partial unique index ("one live code
    # per reader and window") is made again by hand, since the rebuild would lose its WHERE.
    op.drop_index(LIVE_READER_INDEX[0], table_name='issuances')
    with op.batch_alter_table('issuances', recreate='always') as batch_op:
        batch_op.drop_constraint(op.f('ck_issuances_channel'), type_='check')
        batch_op.create_check_constraint('channel', check)
    op.create_index(LIVE_READER_INDEX[0], 'issuances', LIVE_READER_INDEX[1], unique=True,
                    sqlite_where=sa.text('voided_at IS NULL'))


def upgrade():
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('library_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('secret_sha256', sa.String(length=64), nullable=False),
        sa.Column('per_minute', sa.Integer(), server_default='1000', nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['library_id'], ['libraries.id'], name=op.f('fk_api_keys_library_id_libraries')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('secret_sha256', name=op.f('uq_api_keys_secret_sha256')),
    )
    op.create_index('uq_api_keys_live_name', 'api_keys', ['library_id', 'name'], unique=True,
                    sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))
    consortium_live = sa.text('revoked_at IS NULL AND library_id IS NULL')
    op.create_index('uq_api_keys_live_consortium_name', 'api_keys', ['name'], unique=True,
                    sqlite_where=consortium_live, postgresql_where=consortium_live)
    op.create_table(
        'api_usage',
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.Column('minute', sa.DateTime(), nullable=False),
        sa.Column('requests', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_api_usage_api_key_id_api_keys')),
        sa.PrimaryKeyConstraint('api_key_id', 'minute', name=op.f('pk_api_usage')),
    )
    op.create_table(
        'api_idempotent_answers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('request_sha256', sa.String(length=64), nullable=False),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'],
                                name=op.f('fk_api_idempotent_answers_api_key_id_api_keys')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_idempotent_answers')),
        sa.UniqueConstraint('api_key_id', 'key', name='uq_api_idempotent_answers_key'),
    )
    op.create_table(
        'outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('library_id', sa.Integer(), nullable=False),
        sa.Column('issuance_id', sa.Integer(), nullable=False),
        sa.Column('to_address', sa.String(length=254), nullable=False),
        sa.Column('language', sa.String(length=5), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_until', sa.DateTime(), nullable=True),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('failed_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['library_id'], ['libraries.id'], name=op.f('fk_outbox_library_id_libraries')),
        sa.ForeignKeyConstraint(['issuance_id'], ['issuances.id'], name=op.f('fk_outbox_issuance_id_issuances')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    )
    op.create_index('ix_outbox_due', 'outbox', ['next_attempt_at'],
                    sqlite_where=sa.text('sent_at IS NULL AND failed_at IS NULL'),
                    postgresql_where=sa.text('sent_at IS NULL AND failed_at IS NULL'))
    op.create_index('ix_outbox_library_created', 'outbox', ['library_id', 'created_at'])
    # Plain ADD COLUMN on both databases: rule_sets keeps its settings triggers (0008).
    op.add_column('card_records', sa.Column('email', sa.String(length=254), nullable=True))
    op.add_column('rule_sets', sa.Column('online_share', sa.Integer(), nullable=True))
    _channels(CHANNELS_AFTER)


def downgrade():
    # The online form's codes stay handed out: they count as the desk's.
    op.execute("UPDATE issuances SET channel = 'desk' WHERE channel = 'online'")
    _channels(CHANNELS_BEFORE)
    with op.batch_alter_table('rule_sets') as batch_op:
        batch_op.drop_column('online_share')
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite's rebuild of rule_sets dropped its settings triggers (0008): made again.
        for change in ('INSERT', 'UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER settings_changed_rule_sets_{change.lower()} AFTER {change} ON rule_sets "
                       "BEGIN UPDATE consortium SET settings_version = lower(hex(randomblob(8))); END")
    with op.batch_alter_table('card_records') as batch_op:
        batch_op.drop_column('email')
    op.drop_table('outbox')
    op.drop_table('api_idempotent_answers')
    op.drop_table('api_usage')
    op.drop_index('uq_api_keys_live_consortium_name', table_name='api_keys')
    op.drop_index('uq_api_keys_live_name', table_name='api_keys')
    op.drop_table('api_keys')
