"""``Annotated`` dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from service.common.destinations import Resolver
from service.common.destinations import get_resolver as get_resolver  # re-exported: tests override it
from service.config import Settings
from service.errors import InvalidInput
from service.state import HeraldState


async def get_state(request: Request) -> HeraldState:
    state: HeraldState = request.app.state.herald
    return state


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StateDep = Annotated[HeraldState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ResolverDep = Annotated[Resolver | None, Depends(get_resolver)]


async def read_json_body(request: Request) -> Any:
    """The request body parsed as JSON; malformed JSON is a 422 naming the body."""
    return parse_json_body(await request.body())


def parse_json_body(raw: bytes) -> Any:
    """``raw`` parsed as JSON (orjson); malformed JSON is a 422 naming the body."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.single(["body"], f"malformed JSON: {exc}", "json_invalid") from None
