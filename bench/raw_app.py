"""The raw baselines of ingest: minimal FastAPI endpoints over raw asyncpg.

``python -m bench.raw_app --port N`` (with ``BENCH_RAW_DATABASE_URL`` and
``BENCH_RAW_SUBSCRIBERS``, a comma list of uuids) serves ``POST /events`` under uvicorn with
Herald's worker settings (one process, uvloop, httptools, no access log). It parses the body
with orjson and, in one statement (one transaction), inserts the event row, one delivery row
per subscriber and NOTIFYs the dispatcher's channel — the writes Herald makes for the same
event, without validation, matching, payload rendering or any framework beyond the route.
``POST /api/v1/events/batch`` parses ``{"events": [...]}`` with orjson and writes the same rows as
Herald by COPY (events, then one delivery per subscriber) in one transaction, then NOTIFYs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from bench.workload import DELIVERY_COLUMNS, EVENT_COLUMNS, copy_rows, event_row
from service.common.channels import DELIVERIES_CHANNEL
from service.db import asyncpg_dsn

INSERT_SQL = f"""
WITH e AS (
    INSERT INTO events (uuid, type, kind, timestamp, project_uuid, pipeline_uuid, job_uuid,
                        pipeline_run_uuid, sections, payload)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::json)
    RETURNING uuid
),
d AS (
    INSERT INTO deliveries (uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, payload)
    SELECT gen_random_uuid(), e.uuid, $2, s, 'webhook', $10::json FROM e, unnest($11::uuid[]) AS s
    RETURNING 1
)
SELECT (SELECT count(*) FROM d) AS deliveries, pg_notify('{DELIVERIES_CHANNEL}', '') IS NULL AS notified
"""  # noqa: S608  (constant channel name)


def create_app(database_url: str, subscribers: list[UUID]) -> FastAPI:
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        # Herald's engine: pool of 20, overflow 20.
        pool = await asyncpg.create_pool(asyncpg_dsn(database_url), min_size=20, max_size=40)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/events", status_code=202)
    async def ingest(request: Request) -> Response:
        body = orjson.loads(await request.body())
        row = event_row(body, uuid4(), datetime.now(UTC))
        assert pool is not None
        deliveries = await pool.fetchval(INSERT_SQL, *row, subscribers)
        answer = {
            "uuid": str(row[0]),
            "type": row[1],
            "timestamp": row[3].isoformat(),
            "deliveries": deliveries,
        }
        return Response(orjson.dumps(answer), status_code=202, media_type="application/json")

    @app.post("/api/v1/events/batch", status_code=202)  # Herald's path: the same load code
    async def ingest_batch(request: Request) -> Response:
        body = orjson.loads(await request.body())
        events, deliveries = copy_rows(body["events"], subscribers)
        assert pool is not None
        async with pool.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table("events", records=events, columns=EVENT_COLUMNS)
            await conn.copy_records_to_table("deliveries", records=deliveries, columns=DELIVERY_COLUMNS)
            await conn.execute(f"NOTIFY {DELIVERIES_CHANNEL}")
        answers = [
            {
                "uuid": str(row[0]),
                "type": row[1],
                "timestamp": row[3].isoformat(),
                "deliveries": len(subscribers),
            }
            for row in events
        ]
        return Response(orjson.dumps({"items": answers}), status_code=202, media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="raw single-event ingest baseline")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    subscribers = [UUID(s) for s in os.environ["BENCH_RAW_SUBSCRIBERS"].split(",")]
    app = create_app(os.environ["BENCH_RAW_DATABASE_URL"], subscribers)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
