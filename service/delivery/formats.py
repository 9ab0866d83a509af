"""Webhook bodies: the standard envelope (JSON or form-encoded) and the chat formats.

Chat formats (Slack, Microsoft Teams, Discord) get one short human sentence with the key
facts of the event, e.g. ``Pipeline run #3 of job "nightly" in project "demo" failed
(step "Load")``. Every value in it comes from the producer, so each is shortened and its
markup neutralized for the target (no ``<!channel>`` in Slack, no ``@everyone`` in Discord).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlencode

import orjson

from service.common.formats import ContentType, Format

Markup = Literal["plain", "slack", "teams", "discord"]

DISCORD_CONTENT_MAX_CHARS = 2000
CHAT_TEXT_MAX_CHARS = 3000  # Slack shows 4,000 characters before it truncates; Teams similar
NAME_MAX_CHARS = 100
LISTED_ITEMS_MAX = 3

_VERBS = {
    "created": "was created",
    "updated": "was updated",
    "deleted": "was deleted",
    "started": "started",
    "stopped": "stopped",
    "cancelled": "was cancelled",
    "failed": "failed",
    "succeeded": "succeeded",
    "paused": "was paused",
    "unpaused": "was unpaused",
    "service-restarted": "had a service restarted",
}
_WHITESPACE_RE = re.compile(r"[\s\x00-\x1f\x7f]+")
_TEAMS_MARKDOWN_RE = re.compile(r"([\\*_~`\[\]])")
_DISCORD_MARKDOWN_RE = re.compile(r"([\\*_~`|<>\[\]])")
_PARTIAL_ENTITY_RE = re.compile(r"&[a-z]{0,3}$")


def _escape_html(text: str) -> str:
    # Slack's documented escaping: it turns <!channel>, <@U123> and <url|label> into text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_teams(text: str) -> str:
    return _TEAMS_MARKDOWN_RE.sub(r"\\\1", _escape_html(text))


def _escape_discord(text: str) -> str:
    # A zero-width space after "@" defuses @everyone / @here; escaping "<" defuses <@id>.
    return _DISCORD_MARKDOWN_RE.sub(r"\\\1", text).replace("@", "@\u200b")


_ESCAPES: dict[Markup, Callable[[str], str]] = {
    "plain": lambda text: text,
    "slack": _escape_html,
    "teams": _escape_teams,
    "discord": _escape_discord,
}


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    # Never end on half an escape: a dangling backslash or "&am" would change the meaning.
    head = _PARTIAL_ENTITY_RE.sub("", head).rstrip("\\")
    return head + "…"


def _section(parent: Any, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Sentence:
    """Builds one summary, escaping every producer-supplied value on the way in."""

    def __init__(self, markup: Markup) -> None:
        self._escape = _ESCAPES[markup]

    def text(self, value: Any) -> str:
        clean = _WHITESPACE_RE.sub(" ", str(value)).strip()
        return self._escape(_cut(clean, NAME_MAX_CHARS))

    def named(self, kind: str, entity: dict[str, Any]) -> str:
        name = entity.get("name")
        if isinstance(name, str) and name.strip():
            return f'{kind} "{self.text(name)}"'
        uuid = entity.get("uuid")
        return f"{kind} {self.text(str(uuid)[:8])}" if uuid else kind

    def titles(self, labels: tuple[str, str], items: Any, key: str) -> str | None:
        """List the ``key`` of the first few items, labelled singular or plural."""
        if not isinstance(items, list) or not items:
            return None
        label = labels[0] if len(items) == 1 else labels[1]
        names = [
            f'"{self.text(item.get(key))}"' for item in items if isinstance(item, dict) and item.get(key)
        ]
        if not names:
            return f"{len(items)} {label}"
        shown = ", ".join(names[:LISTED_ITEMS_MAX])
        more = f" and {len(items) - LISTED_ITEMS_MAX} more" if len(items) > LISTED_ITEMS_MAX else ""
        return f"{label} {shown}{more}"


def _numbered(kind: str, number: int | None) -> str:
    return f"{kind} #{number}" if number is not None else kind


def _subject(family: str, event: dict[str, Any], say: _Sentence) -> tuple[str, dict[str, Any]]:
    """Return the sentence's subject and the entity it is about (where its details live)."""
    project = _section(event, "project")
    where = f" in {say.named('project', project)}" if project else ""
    pipeline = _section(project, "pipeline")
    job = _section(project, "job")
    run = _section(job, "run")
    if family == "project":
        return say.named("project", project), project
    if family == "project:pipeline":
        return say.named("pipeline", pipeline) + where, pipeline
    if family == "project:pipeline:interactive-session":
        return "interactive session of " + say.named("pipeline", pipeline) + where, _section(
            pipeline, "session"
        )
    if family == "project:pipeline:interactive-session:pipeline-run":
        session = _section(pipeline, "session")
        pipeline_run = _section(session, "pipeline_run") or _section(pipeline, "pipeline_run")
        subject = _numbered("interactive pipeline run", _number(pipeline_run.get("number")))
        return f"{subject} of {say.named('pipeline', pipeline)}{where}", pipeline_run
    if family == "project:environment":
        environment = _section(project, "environment")
        return say.named("environment", environment) + where, environment
    if family == "project:environment:image-build":
        environment = _section(project, "environment")
        return f"image build of {say.named('environment', environment)}{where}", _section(
            environment, "image_build"
        )
    if family == "project:one-off-job":
        return say.named("job", job) + where, job
    if family == "project:one-off-job:pipeline-run":
        pipeline_run = _section(job, "pipeline_run")
        subject = _numbered("pipeline run", _number(pipeline_run.get("number")))
        return f"{subject} of {say.named('job', job)}{where}", pipeline_run
    if family == "project:cron-job":
        return say.named("cron job", job) + where, job
    if family == "project:cron-job:run":
        return f"{_numbered('run', _number(run.get('number')))} of {say.named('cron job', job)}{where}", run
    if family == "project:cron-job:run:pipeline-run":
        pipeline_run = _section(run, "pipeline_run") or _section(job, "pipeline_run")
        number = _number(pipeline_run.get("number_in_run"))
        if number is None:
            number = _number(pipeline_run.get("number"))
        subject = _numbered("pipeline run", number)
        run_part = _numbered("run", _number(run.get("number")))
        return f"{subject} of {run_part} of {say.named('cron job', job)}{where}", pipeline_run
    if family == "jupyter:image-build":
        return "Jupyter image build", _section(_section(event, "jupyter"), "image_build")
    return "", {}


def _details(family: str, action: str, entity: dict[str, Any], say: _Sentence) -> list[str]:
    details: list[str] = []
    changes = _section(entity, "update").get("changes")
    changed = say.titles(("changed", "changed"), changes, "changed_object")
    if changed is not None:
        details.append(changed)
    failed = say.titles(("step", "steps"), entity.get("failed_steps"), "title")
    if action == "failed" and failed is not None:
        details.append(failed)
    if family == "project:cron-job:run":
        total = _number(entity.get("total_pipeline_runs"))
        if total is not None:
            details.append(f"{total} pipeline run{'' if total == 1 else 's'}")
    if family == "project:cron-job" and action in ("created", "unpaused") and entity.get("schedule"):
        details.append(f'schedule "{say.text(entity["schedule"])}"')
    if family.endswith("image-build") and entity.get("image_tag"):
        details.append(f'image "{say.text(entity["image_tag"])}"')
    return details


def summarize(event: dict[str, Any], *, markup: Markup = "plain") -> str:
    """Return a short sentence with the key facts of a notification payload.

    Works for every catalog type and ``ping`` and never raises, whatever the dict holds;
    ``markup`` selects how producer-supplied values are escaped for a chat service.
    """
    say = _Sentence(markup)
    event_type = event.get("type") if isinstance(event, dict) else None
    if not isinstance(event_type, str) or not event_type:
        return "Herald event"
    if event_type == "ping":
        return "Test notification from Herald (ping)"
    family, _, action = event_type.rpartition(":")
    subject, entity = _subject(family, event, say)
    if not subject:
        return f"Herald event {say.text(event_type)}"
    verb = _VERBS.get(action, f"had event {say.text(action)}")
    sentence = f"{subject[0].upper()}{subject[1:]} {verb}"
    details = _details(family, action, entity, say)
    return f"{sentence} ({'; '.join(details)})" if details else sentence


def render_body(
    fmt: Format, content_type: ContentType, delivered_for: dict[str, Any], event: dict[str, Any]
) -> bytes:
    """Return the exact bytes of a webhook body (docs/webhooks.md, "Bodies").

    ``delivered_for`` is ``{"uuid", "name", "type": "webhook"}``; ``event`` the stored
    notification payload. Chat formats ignore ``content_type`` (they are JSON only).
    """
    if fmt == "standard":
        if content_type == "application/x-www-form-urlencoded":
            fields = {"delivered_for": orjson.dumps(delivered_for), "event": orjson.dumps(event)}
            return urlencode({key: value.decode() for key, value in fields.items()}).encode("ascii")
        return orjson.dumps({"delivered_for": delivered_for, "event": event})
    if fmt == "discord":
        content = _cut(summarize(event, markup="discord"), DISCORD_CONTENT_MAX_CHARS)
        return orjson.dumps({"content": content})
    markup: Markup = "slack" if fmt == "slack" else "teams"
    return orjson.dumps({"text": _cut(summarize(event, markup=markup), CHAT_TEXT_MAX_CHARS)})
