"""Alembic environment: migrations run on the connection handed in by `forecasting.sources.schema`."""

from alembic import context
from sqlalchemy import create_engine

connection = context.config.attributes.get("connection")

if connection is None:
    # Command-line use (`alembic -c sql/alembic.ini upgrade head`): connect from the ini's URL.
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(connection=connection, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    # With `database.schema` the connection's search path is that schema; Alembic's version table goes there too.
    context.configure(
        connection=connection, render_as_batch=True, version_table_schema=context.config.attributes.get("version_table_schema")
    )
    with context.begin_transaction():
        context.run_migrations()
