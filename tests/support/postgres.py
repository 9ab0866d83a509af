"""The PostgreSQL server the tests create their databases on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from service.db import asyncpg_dsn


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@dataclass
class PgServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    admin_url: str
    created: list[str]
    # A server started for this session only: its databases vanish with it, no need to drop them.
    ephemeral: bool = False

    async def execute(self, sql: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.admin_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create_database(self, template: str | None = None) -> str:
        name = f"herald_t_{uuid.uuid4().hex[:16]}"
        suffix = f" TEMPLATE {template}" if template else ""
        await self.execute(f"CREATE DATABASE {name}{suffix}")
        self.created.append(name)
        return with_database(self.admin_url, name)
