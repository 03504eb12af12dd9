"""Alembic environment: the metadata of every svqm table, the URL handed over by `svqm db upgrade`."""

from alembic import context
from sqlalchemy.engine import Connection

from svqm.db import make_engine, migrating
from svqm.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    # Run by Alembic's own commands (a downgrade, say): the same transaction and SQLite foreign
    # key handling as `svqm db upgrade`.
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn, migrating(conn):
        _run(conn)
    engine.dispose()
