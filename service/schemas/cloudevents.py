"""CloudEvents 1.0 at ingest: structured, binary and batch events mapped onto Herald's ingest body.

The mapping: ``type`` is the Herald type; ``data`` is the rest of the body (for catalog types
an object of entity sections, for custom types the ``data`` itself); ``time`` is the
``timestamp``; ``id`` is the ``uuid`` when it is one, else ``uuid5(NAMESPACE_URL, source + "#"
+ id)``, so the same CloudEvent sent twice is one event (recorded once, answered as a replay).
The mapped body is then validated as any ingest body, and its errors are named by the
CloudEvents attribute they came from (``("body", "data", "project", "name")``,
``("header", "ce-type")``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson

from service.catalog import CATALOG
from service.errors import InvalidInput
from service.schemas.events import ErrorDict

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
SPEC_VERSION = "1.0"
REQUIRED = ("id", "source", "specversion", "type")
_HERALD_FIELD_OF = {"uuid": "id", "type": "type", "timestamp": "time"}


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value, lowercased, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_binary(headers: Mapping[str, str]) -> bool:
    """Whether a request is a CloudEvent in binary mode (it carries ``ce-specversion``)."""
    return "ce-specversion" in headers


def event_uuid(event_id: str, source: str) -> str:
    """Herald's uuid of a CloudEvent: its ``id`` when that is a uuid, else one derived from
    ``source`` and ``id`` (the pair that identifies a CloudEvent)."""
    try:
        return str(UUID(event_id))
    except ValueError:
        return str(uuid5(NAMESPACE_URL, f"{source}#{event_id}"))


def _herald_body(
    attributes: Mapping[str, Any], data: Any, where: tuple[str | int, ...], binary: bool
) -> dict[str, Any]:
    """The ingest body of one CloudEvent; ``InvalidInput`` naming a missing or bad attribute."""

    def at(name: str) -> list[str | int]:
        return ["header", f"ce-{name}"] if binary else [*where, name]

    errors: list[ErrorDict] = []
    for name in REQUIRED:
        value = attributes.get(name)
        if value is None or value == "":
            errors.append(
                {"loc": at(name), "msg": f"Field required: CloudEvents attribute {name}", "type": "missing"}
            )
        elif not isinstance(value, str):
            errors.append({"loc": at(name), "msg": "Input should be a valid string", "type": "string_type"})
    version = attributes.get("specversion")
    if isinstance(version, str) and version and version != SPEC_VERSION:
        errors.append(
            {"loc": at("specversion"), "msg": f"specversion must be {SPEC_VERSION}", "type": "value_error"}
        )
    if not binary and "data_base64" in attributes:
        errors.append(
            {"loc": [*where, "data_base64"], "msg": "data must be JSON, not base64", "type": "value_error"}
        )
    if errors:
        raise InvalidInput(errors)
    body: dict[str, Any] = {
        "type": attributes["type"],
        "uuid": event_uuid(attributes["id"], attributes["source"]),
    }
    if attributes.get("time") is not None:
        body["timestamp"] = attributes["time"]
    if attributes["type"] in CATALOG:
        if data is not None and not isinstance(data, dict):
            loc = ["body"] if binary else [*where, "data"]
            raise InvalidInput.single(loc, "data must be an object of entity sections for a catalog type")
        body.update(data or {})
    elif data is not None:
        body["data"] = data
    return body


def _renamed(
    errors: list[ErrorDict], prefix: tuple[str | int, ...], depth: int, binary: bool
) -> list[ErrorDict]:
    """Herald's error locations restated in CloudEvents terms: ``depth`` is the length of the
    validated body's location prefix, ``prefix`` the CloudEvent's."""
    renamed = []
    for error in errors:
        loc = list(error["loc"])
        rest = loc[depth:]
        head = rest[0] if rest else None
        if isinstance(head, str) and head in _HERALD_FIELD_OF:
            attribute = _HERALD_FIELD_OF[head]
            new = ["header", f"ce-{attribute}"] if binary else [*prefix, attribute, *rest[1:]]
        elif binary:
            new = ["body", *rest[1:]] if head == "data" else ["body", *rest]
        else:
            new = [*prefix, *rest] if head == "data" else [*prefix, "data", *rest]
        renamed.append({**error, "loc": new})
    return renamed


def _object(text: bytes, loc: list[str | int]) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.single(loc, f"JSON decode error: {exc}", "json_invalid") from None


class Mode:
    """How a CloudEvent came (structured, binary or batch): where its errors are named."""

    def __init__(self, binary: bool = False, batch: bool = False) -> None:
        self.binary = binary
        self.batch = batch

    def restate(self, invalid: InvalidInput) -> InvalidInput:
        """``invalid``, the errors of the mapped ingest body, named in CloudEvents terms."""
        if self.batch:
            errors = [
                error
                for part in invalid.errors
                for error in _renamed([part], ("body", _index(part)), 3, binary=False)
            ]
        else:
            errors = _renamed(invalid.errors, () if self.binary else ("body",), 1, self.binary)
        return InvalidInput(errors)


def structured_body(text: bytes) -> bytes:
    """The ingest body of a structured-mode CloudEvent (``application/cloudevents+json``)."""
    event = _object(text, ["body"])
    if not isinstance(event, dict):
        raise InvalidInput.single(["body"], "a CloudEvent must be a JSON object")
    return orjson.dumps(_herald_body(event, event.get("data"), ("body",), binary=False))


def binary_body(headers: Mapping[str, str], text: bytes) -> bytes:
    """The ingest body of a binary-mode CloudEvent: attributes in ``ce-*`` headers, ``data`` the JSON body."""
    kind = media_type(headers.get("content-type"))
    if text and kind and kind != "application/json" and not kind.endswith("+json"):
        raise InvalidInput.single(["header", "content-type"], "Herald takes JSON data: application/json")
    attributes = {key[3:]: value for key, value in headers.items() if key.startswith("ce-")}
    data = _object(text, ["body"]) if text else None
    return orjson.dumps(_herald_body(attributes, data, (), binary=True))


def batch_body(text: bytes) -> bytes:
    """The ingest batch body of a CloudEvents batch (``application/cloudevents-batch+json``, a JSON array)."""
    events = _object(text, ["body"])
    if not isinstance(events, list):
        raise InvalidInput.single(["body"], "a CloudEvents batch must be a JSON array")
    bodies: list[dict[str, Any]] = []
    errors: list[ErrorDict] = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            errors.append(
                {"loc": ["body", index], "msg": "a CloudEvent must be a JSON object", "type": "dict_type"}
            )
            continue
        try:
            bodies.append(_herald_body(event, event.get("data"), ("body", index), binary=False))
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidInput(errors)
    return orjson.dumps({"events": bodies})


def _index(error: ErrorDict) -> str | int:
    loc = error["loc"]
    return loc[2] if len(loc) > 2 else "events"
