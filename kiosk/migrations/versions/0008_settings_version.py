"""settings version: a token the database replaces whenever something the issuing path keeps in memory changes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 17:45:00

Triggers, not application code, replace consortium.settings_version: every writer
(the app, the command line, a data migration, an operator's SQL) is seen by every
process's settings snapshot (kiosk.domain.snapshot) at its next look.
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

CACHED = ('libraries', 'platforms', 'rule_sets', 'sip2_settings', 'closed_days', 'kiosks', 'pools')
# The consortium's own row: a change to these, not to the version itself.
CONSORTIUM_COLUMNS = 'name, service_end, pepper_check'
SQLITE_BUMP = "UPDATE consortium SET settings_version = lower(hex(randomblob(8)))"


def upgrade():
    with op.batch_alter_table('consortium') as batch_op:
        batch_op.add_column(sa.Column('settings_version', sa.String(length=32), server_default='0',
                                      nullable=False))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("""
            CREATE FUNCTION kodomat_settings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE consortium SET settings_version = substr(md5(random()::text || clock_timestamp()::text), 1, 16);
                RETURN NULL;
            END $$""")
        # Deferred to the commit: the consortium row is locked last and briefly, so a
        # change never holds it through a long import nor waits for it holding others.
        for table in CACHED:
            op.execute(f"CREATE CONSTRAINT TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
                       "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kodomat_settings_changed()")
            op.execute(f"CREATE TRIGGER settings_truncated AFTER TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION kodomat_settings_changed()")
        op.execute(f"CREATE CONSTRAINT TRIGGER settings_changed AFTER UPDATE OF {CONSORTIUM_COLUMNS} ON consortium "
                   "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kodomat_settings_changed()")
    else:
        for table in CACHED:
            for change in ('INSERT', 'UPDATE', 'DELETE'):
                op.execute(f"CREATE TRIGGER settings_changed_{table}_{change.lower()} AFTER {change} ON {table} "
                           f"BEGIN {SQLITE_BUMP}; END")
        op.execute(f"CREATE TRIGGER settings_changed_consortium AFTER UPDATE OF {CONSORTIUM_COLUMNS} ON consortium "
                   f"BEGIN {SQLITE_BUMP}; END")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table in CACHED:
            op.execute(f"DROP TRIGGER settings_truncated ON {table}")
        for table in CACHED + ('consortium',):
            op.execute(f"DROP TRIGGER settings_changed ON {table}")
        op.execute("DROP FUNCTION kodomat_settings_changed()")
    else:
        for table in CACHED:
            for change in ('insert', 'update', 'delete'):
                op.execute(f"DROP TRIGGER settings_changed_{table}_{change}")
        op.execute("DROP TRIGGER settings_changed_consortium")
    with op.batch_alter_table('consortium') as batch_op:
        batch_op.drop_column('settings_version')
