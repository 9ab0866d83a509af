"""The SQLModel tables and the Alembic migrations describe the same schema."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import service.models.all_tables  # noqa: F401  (registers every table)
from service.db import async_database_url


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_server_default": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_async_engine(async_database_url(database_url))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == []
