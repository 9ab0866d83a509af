"""The webhook form: the catalog as checkboxes grouped by family, and form fields ↔ API bodies.

The form posts the same fields the JSON API takes; ``create_body`` and ``update_body`` build a
``WebhookCreate`` / ``WebhookUpdate`` from them, so validation is the API's. Subscriptions are
the checked catalog types plus free patterns (one per line, optionally followed by a project
and a job uuid), each scoped to the project / job given below them unless the line names one.

Custom headers are typed as ``Name: value`` lines. Stored values are never put back into a page:
editing shows the stored names only and keeps the values unless a new set is typed (or "Remove
all headers" is ticked). Typed ones are kept like every other field: a form shown again (after
**Send test**, or a problem) holds them, so the webhook is then created with them.

A new webhook's form also takes the signing secret. **Send test** with none makes one and puts
it in the form, so the test and the webhook created next sign with the same secret (the one the
receiver is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from service.catalog import CATALOG
from service.common.formats import FORM_CONTENT_TYPE
from service.metrics import type_family
from service.models.subscribers import Subscriber
from service.models.subscriptions import Subscription
from service.schemas.subscribers import WebhookCreate, WebhookUpdate
from service.web.context import Form
from service.web.pages.common import Problems

FORMATS: tuple[tuple[str, str], ...] = (
    ("", "Chosen from the URL"),
    ("standard", "Standard"),
    ("slack", "Slack"),
    ("teams", "Microsoft Teams"),
    ("discord", "Discord"),
)
Body = TypeVar("Body", WebhookCreate, WebhookUpdate)
CONTENT_TYPES = ("application/json", FORM_CONTENT_TYPE)


@dataclass(frozen=True)
class Family:
    name: str
    scopes: str
    types: list[str]


def _scopes_text(filters: Sequence[Sequence[str]]) -> str:
    if not filters:
        return "not scopable"
    return "scope: project or job" if len(filters) > 1 else "scope: project"


def catalog_families(*, owned: bool = False) -> list[Family]:
    """The subscribable types grouped by family, in catalog order; ``owned``: only the types that
    have a project (all a webhook owned by a project can hear of)."""
    families: dict[str, Family] = {}
    for info in CATALOG.values():
        if owned and ("project_uuid",) not in info.optional_filters:
            continue
        name = type_family(info.name)
        if name not in families:
            families[name] = Family(name, _scopes_text(info.optional_filters), [])
        families[name].types.append(info.name)
    return list(families.values())


@dataclass
class WebhookFormValues:
    """What the form shows: the values as typed (or as stored, when editing)."""

    name: str = ""
    url: str = ""
    format: str = ""
    content_type: str = "application/json"
    verify_ssl: bool = True
    checked: set[str] = field(default_factory=set)
    patterns: str = ""
    project_uuid: str = ""
    job_uuid: str = ""
    owner: str = ""
    headers: str = ""
    """The ``Name: value`` lines as typed (shown again with the form; stored ones never are)."""
    clear_headers: bool = False
    header_names: list[str] = field(default_factory=list)
    """The stored headers' names (editing)."""
    rate_limit: str = ""
    """Requests per minute as typed; empty: no limit (a new chat webhook: its format's default)."""
    ordered: bool = False
    secret: str = ""
    """The signing secret of a new webhook as typed (or made for a test); empty: made at creation."""

    @classmethod
    def from_form(cls, form: Form) -> WebhookFormValues:
        return cls(
            name=form.get("name"),
            url=form.get("url"),
            format=form.get("format"),
            content_type=form.get("content_type") or "application/json",
            verify_ssl=form.has("verify_ssl"),
            checked=set(form.getlist("event_type")),
            patterns=form.get("patterns"),
            project_uuid=form.get("project_uuid"),
            job_uuid=form.get("job_uuid"),
            owner=form.get("owner"),
            headers=form.get("headers"),
            clear_headers=form.has("clear_headers"),
            header_names=form.getlist("header_name"),
            rate_limit=form.get("rate_limit_per_minute").strip(),
            ordered=form.has("ordered"),
            secret=form.get("secret"),
        )

    @classmethod
    def from_webhook(cls, webhook: Subscriber, subscriptions: Sequence[Subscription]) -> WebhookFormValues:
        values = cls(
            name=webhook.name,
            url=webhook.url or "",
            format=webhook.format,
            content_type=webhook.content_type,
            verify_ssl=webhook.verify_ssl,
            owner=str(webhook.project_uuid or ""),
            header_names=list(webhook.header_names),
            rate_limit="" if webhook.rate_limit_per_minute is None else str(webhook.rate_limit_per_minute),
            ordered=webhook.ordered,
        )
        scopes = {(s.project_uuid, s.job_uuid) for s in subscriptions}
        if len(scopes) == 1:
            project, job = scopes.pop()
            values.job_uuid = str(job or "")
            # An owned webhook's subscriptions are scoped to its owner anyway: no need to say so.
            values.project_uuid = "" if project == webhook.project_uuid else str(project or "")
            values.checked = {s.event_type for s in subscriptions if s.event_type in CATALOG}
            lines = [s.event_type for s in subscriptions if s.event_type not in CATALOG]
        else:
            scoped = [(s.event_type, s.project_uuid, s.job_uuid) for s in subscriptions]
            lines = [" ".join(str(part) for part in parts if part) for parts in scoped]
        values.patterns = "\n".join(lines)
        return values

    def subscriptions(self) -> list[dict[str, Any]]:
        common = {"project_uuid": self.project_uuid or None, "job_uuid": self.job_uuid or None}
        items = [{"event_type": name, **common} for name in CATALOG if name in self.checked]
        for line in self.patterns.splitlines():
            parts = line.split()
            if not parts:
                continue
            scope = common if len(parts) == 1 else {"project_uuid": parts[1], "job_uuid": None}
            if len(parts) > 2:
                scope = {"project_uuid": parts[1], "job_uuid": parts[2]}
            items.append({"event_type": parts[0], **scope})
        return [{key: value for key, value in item.items() if value is not None} for item in items]

    def header_set(self) -> tuple[dict[str, str], list[str]]:
        """The typed headers, and the problems of lines that are not ``Name: value`` (the
        messages name the line and the header, never the value)."""
        headers: dict[str, str] = {}
        problems: list[str] = []
        for number, line in enumerate(self.headers.splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            name = name.strip()
            if not colon or not name:
                problems.append(f"line {number} must read Name: value")
            elif name.lower() in (known.lower() for known in headers):
                problems.append(f"{name}: given twice")
            else:
                headers[name] = value.strip()
        return headers, problems

    def fields(self, *, editing: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "url": self.url,
            "verify_ssl": self.verify_ssl,
            "content_type": self.content_type,
            "subscriptions": self.subscriptions(),
            "ordered": self.ordered,
        }
        # Left empty: no limit when editing; left out when creating, so a chat format gets its default.
        if self.rate_limit:
            body["rate_limit_per_minute"] = (
                int(self.rate_limit) if self.rate_limit.isdigit() else self.rate_limit
            )
        elif editing:
            body["rate_limit_per_minute"] = None
        if self.format:
            body["format"] = self.format
        if self.owner:
            body["project_uuid"] = self.owner
        if self.secret and not editing:
            body["secret"] = self.secret
        # Nothing typed keeps the stored set (an edit) or gives none (a new webhook).
        if self.headers:
            body["headers"] = self.header_set()[0]
        elif self.clear_headers:
            body["headers"] = {}
        return body


# Where each API field's problems are shown on the form.
_FIELD_OF = {
    "subscriptions": "events",
    "format": "format",
    "content_type": "content_type",
    "project_uuid": "owner",
    "headers": "headers",
    "rate_limit_per_minute": "rate_limit_per_minute",
    "secret": "secret",
}


def report(errors: Sequence[Any], problems: Problems) -> None:
    """File API-style errors (``{"loc", "msg"}``) under the form field they concern."""
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part != "body"]
        name = str(loc[0]) if loc else ""
        target = _FIELD_OF.get(name, name if name in ("name", "url", "ordered") else "form")
        if name == "subscriptions" and len(loc) > 2 and loc[-1] == "project_uuid":
            target = "events"
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if name == "subscriptions" and len(loc) > 1 and isinstance(loc[1], int):
            message = f"{loc[-1]}: {message}" if len(loc) > 2 else message
        if name == "headers" and len(loc) > 1:
            message = f"{loc[1]}: {message}"  # the header's name, never its value
        problems.add(target, message)


def validated(model: type[Body], values: WebhookFormValues, problems: Problems) -> Body | None:
    """The form's values as ``model`` (``WebhookCreate`` or ``WebhookUpdate``), or ``None`` with
    the problems filed."""
    _, header_problems = values.header_set()
    for message in header_problems:
        problems.add("headers", message)
    try:
        body = model.model_validate(values.fields(editing=model is WebhookUpdate))
    except ValidationError as exc:
        report([dict(e) for e in exc.errors()], problems)
        return None
    return None if header_problems else body
