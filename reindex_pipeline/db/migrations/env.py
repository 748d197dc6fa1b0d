"""Alembic environment: the URL comes from the caller's Config (see ``reindex_pipeline.db.migrate``)."""

from alembic import context
from sqlalchemy import create_engine, pool

from reindex_pipeline.db.migrate import VERSION_TABLE, sqlalchemy_url

config = context.config
url = sqlalchemy_url(config.get_main_option("sqlalchemy.url"))

if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, version_table=VERSION_TABLE, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
