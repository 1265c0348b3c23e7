"""library rules: rule sets, closed days, reader facts, activations, three platforms

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 12:30:00

"""
import json

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# The slip's steps; "{url}" is the platform's activation address. "access_days" and
# "devices" are what the slip may promise (30 days from activation, two devices);
# a platform without them promises nothing the library has not checked. Legimi's are the
# general steps' reviewed translations word for word, so its slips read as before.
LEGIMI_STEPS = {
    "access_days": 30,
    "devices": 2,
    "pl": ["Wejdź na {url} i wpisz kod.",
           "Załóż konto: nazwa użytkownika, e-mail (kliknij link aktywacyjny, który przyjdzie e-mailem) "
           "i hasło — albo zaloguj się na swoje konto i wpisz nowy kod.",
           "Pobierz darmową aplikację Legimi: iOS, Android, Windows — telefony, tablety, czytniki."],
    "en": ["Go to {url} and enter the code.",
           "Create an account: a user name, an e-mail address (click the activation link you will receive by "
           "e-mail) and a password — or log in to your existing account and enter the new code.",
           "Download the free Legimi app: iOS, Android, Windows — phones, tablets, e-readers."],
    "uk": ["Перейдіть на {url} і введіть код.",
           "Створіть обліковий запис: ім'я користувача, e-mail (натисніть посилання активації, яке прийде "
           "електронною поштою) і пароль — або увійдіть у свій обліковий запис і введіть новий код.",
           "Завантажте безкоштовний застосунок Legimi: iOS, Android, Windows — телефони, планшети, рідери."],
}
EMPIK_GO_STEPS = {
    "access_days": 30,
    "pl": ["Wejdź na {url} i wpisz kod.",
           "Zaloguj się na konto Empik albo załóż nowe (e-mail i hasło).",
           "Pobierz darmową aplikację Empik Go na telefon lub tablet (iOS, Android) i zaloguj się tym samym kontem."],
    "en": ["Go to {url} and enter the code.",
           "Sign in to your Empik account or create one (e-mail and password).",
           "Get the free Empik Go app for a phone or tablet (iOS, Android) and sign in with the same account."],
    "uk": ["Перейдіть на {url} і введіть код.",
           "Увійдіть в обліковий запис Empik або створіть новий (e-mail і пароль).",
           "Завантажте безкоштовний застосунок Empik Go на телефон або планшет (iOS, Android) і увійдіть тим "
           "самим обліковим записом."],
}
IBUK_LIBRA_STEPS = {
    "pl": ["Wejdź na {url}, wybierz „Mam kod PIN” i wpisz kod.",
           "Załóż konto czytelnika IBUK Libra (e-mail i hasło) albo zaloguj się na swoje.",
           "Czytaj w przeglądarce albo w aplikacji IBUK Libra (iOS, Android)."],
    "en": ["Go to {url}, choose “I have a PIN code” and enter the code.",
           "Create an IBUK Libra reader account (e-mail and password) or sign in to yours.",
           "Read in the browser or in the IBUK Libra app (iOS, Android)."],
    "uk": ["Перейдіть на {url}, виберіть «Mam kod PIN» і введіть код.",
           "Створіть обліковий запис читача IBUK Libra (e-mail і пароль) або увійдіть у свій.",
           "Читайте в браузері або в застосунку IBUK Libra (iOS, Android)."],
}


def upgrade():
    with op.batch_alter_table('platforms') as batch_op:
        batch_op.add_column(sa.Column('slip_steps', sa.Text(), nullable=True))
    with op.batch_alter_table('libraries') as batch_op:
        batch_op.add_column(sa.Column('register_facts', sa.String(length=60), nullable=True))
    with op.batch_alter_table('card_records') as batch_op:
        batch_op.add_column(sa.Column('birth_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('last_loan', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('debt_grosze', sa.Integer(), nullable=True))
    with op.batch_alter_table('codes') as batch_op:
        batch_op.add_column(sa.Column('activation_marked_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('activated_on', sa.Date(), nullable=True))
    with op.batch_alter_table('issuances') as batch_op:
        batch_op.add_column(sa.Column('first_timer', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_issuances_library_reader', ['library_id', 'reader_key'], unique=False)

    op.create_table(
        'rule_sets',
        sa.Column('library_id', sa.Integer(), nullable=False),
        sa.Column('release_day', sa.String(length=30), server_default='window_start', nullable=False),
        sa.Column('release_time', sa.String(length=5), server_default='00:00', nullable=False),
        sa.Column('early_release', sa.String(length=30), server_default='off', nullable=False),
        sa.Column('min_age', sa.Integer(), nullable=True),
        sa.Column('active_within_months', sa.Integer(), nullable=True),
        sa.Column('max_debt_grosze', sa.Integer(), nullable=True),
        sa.Column('non_activation_wait', sa.Integer(), nullable=True),
        sa.Column('first_timer_reserve', sa.Integer(), nullable=True),
        sa.Column('first_timer_until_day', sa.Integer(), nullable=True),
        sa.Column('platforms_rule', sa.String(length=30), server_default='independent', nullable=False),
        sa.Column('priority_until_day', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['library_id'], ['libraries.id'], name=op.f('fk_rule_sets_library_id_libraries')),
        sa.PrimaryKeyConstraint('library_id', name=op.f('pk_rule_sets')),
    )
    op.create_table(
        'closed_days',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('library_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['library_id'], ['libraries.id'], name=op.f('fk_closed_days_library_id_libraries')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_closed_days')),
        sa.UniqueConstraint('library_id', 'day', name='uq_closed_days_library_day'),
    )
    op.create_table(
        'activation_imports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('library_id', sa.Integer(), nullable=False),
        sa.Column('platform_id', sa.Integer(), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('marked', sa.Integer(), nullable=False),
        sa.Column('source_filename', sa.String(length=300), nullable=False),
        sa.Column('imported_by', sa.String(length=120), nullable=False),
        sa.Column('imported_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['library_id'], ['libraries.id'],
                                name=op.f('fk_activation_imports_library_id_libraries')),
        sa.ForeignKeyConstraint(['platform_id'], ['platforms.id'],
                                name=op.f('fk_activation_imports_platform_id_platforms')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_activation_imports')),
    )
    op.create_index('ix_activation_imports_library_platform', 'activation_imports',
                    ['library_id', 'platform_id', 'as_of'])

    platforms = sa.table('platforms', sa.column('slug', sa.String), sa.column('name', sa.String),
                         sa.column('activation_url', sa.String), sa.column('slip_steps', sa.Text))
    op.execute(platforms.update().where(platforms.c.slug == 'legimi')
               .values(slip_steps=json.dumps(LEGIMI_STEPS, ensure_ascii=False)))
    op.bulk_insert(platforms, [
        {'slug': 'empik-go', 'name': 'Empik Go', 'activation_url': 'https://www.empik.com/go/kod',
         'slip_steps': json.dumps(EMPIK_GO_STEPS, ensure_ascii=False)},
        {'slug': 'ibuk-libra', 'name': 'IBUK Libra', 'activation_url': 'https://libra.ibuk.pl/kod',
         'slip_steps': json.dumps(IBUK_LIBRA_STEPS, ensure_ascii=False)},
    ])


def downgrade():
    op.execute("DELETE FROM platforms WHERE slug IN ('empik-go', 'ibuk-libra')")
    op.drop_index('ix_activation_imports_library_platform', table_name='activation_imports')
    op.drop_table('activation_imports')
    op.drop_table('closed_days')
    op.drop_table('rule_sets')
    with op.batch_alter_table('issuances') as batch_op:
        batch_op.drop_index('ix_issuances_library_reader')
        batch_op.drop_column('first_timer')
    with op.batch_alter_table('codes') as batch_op:
        batch_op.drop_column('activated_on')
        batch_op.drop_column('activation_marked_at')
    with op.batch_alter_table('card_records') as batch_op:
        batch_op.drop_column('debt_grosze')
        batch_op.drop_column('last_loan')
        batch_op.drop_column('birth_date')
    with op.batch_alter_table('libraries') as batch_op:
        batch_op.drop_column('register_facts')
    with op.batch_alter_table('platforms') as batch_op:
        batch_op.drop_column('slip_steps')
