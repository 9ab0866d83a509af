"""The console's pure parts: the scope, the chart's layout, the formatting filters, the webhook form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from uuid import uuid4

import pytest

from service.core.callers import ADMIN, Caller, Forbidden
from service.core.deliveries import DeliveryFilter
from service.core.feed import EventFilter
from service.errors import NotFound
from service.models.subscribers import WebhookSubscriber
from service.web.chart import HOURS, hourly_counts, layout
from service.web.context import Form
from service.web.templating import ago, environment, percent, span
from service.web.webhook_form import WebhookFormValues, catalog_families


def test_a_read_only_scope_refuses_every_change() -> None:
    ADMIN.require_write()
    with pytest.raises(Forbidden):
        Caller(project_uuid=uuid4(), read_only=True).require_write()


def test_a_project_scope_sees_its_events_and_owned_webhooks_only() -> None:
    project, other = uuid4(), uuid4()
    scope = Caller(project_uuid=project)
    assert scope.events(EventFilter()) == EventFilter(project_uuid=project)
    assert scope.events(EventFilter(project_uuid=other)) is None
    assert scope.sees_event(str(project))
    assert not scope.sees_event(str(other))
    owned_uuid = uuid4()
    assert scope.deliveries(DeliveryFilter(), [owned_uuid]).subscriber_uuids == (owned_uuid,)
    assert ADMIN.deliveries(DeliveryFilter(), [owned_uuid]).subscriber_uuids is None
    webhook = WebhookSubscriber(uuid=uuid4(), kind="webhook", name="x", url="http://h", secret="s")
    with pytest.raises(NotFound):
        scope.webhook(webhook)
    assert ADMIN.webhook(webhook) is webhook
    owned = WebhookSubscriber(
        uuid=owned_uuid, kind="webhook", name="o", url="http://h", secret="s", project_uuid=project
    )
    assert scope.webhook(owned) is owned
    with pytest.raises(NotFound):
        Caller(project_uuid=other).webhook(owned)
    assert ADMIN.events(EventFilter(type="x")) == EventFilter(type="x")


def test_the_chart_stacks_each_hour_and_rounds_its_axis() -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        SimpleNamespace(hour=first, status="delivered", n=30),
        SimpleNamespace(hour=first, status="delivering", n=5),
        SimpleNamespace(hour=first + timedelta(hours=23), status="failed", n=7),
        SimpleNamespace(hour=first - timedelta(hours=1), status="failed", n=99),  # before the window
    ]
    counts = hourly_counts(rows, first)
    assert len(counts) == HOURS
    assert counts[0] == {"delivered": 30, "pending": 5, "failed": 0, "cancelled": 0}
    chart = layout(counts, first)
    assert chart.totals == {"delivered": 30, "pending": 5, "failed": 7, "cancelled": 0}
    assert chart.peak == 35
    assert chart.ticks[-1][1] == "50"  # the axis tops out at a round number
    first_bar, second_bar = chart.bars[:2]
    assert first_bar.outcome == "delivered"
    assert second_bar.y + second_bar.height == pytest.approx(first_bar.y)  # stacked
    assert all(0 <= bar.x_pct < 100 for bar in chart.bars)
    assert layout(hourly_counts([], first), first).empty


def test_times_and_shares_read_as_words() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert ago(now - timedelta(seconds=2), now) == "just now"
    assert ago(now - timedelta(minutes=5), now) == "5 min ago"
    assert ago(now - timedelta(days=3, hours=2), now) == "3 d ago"
    assert ago(now + timedelta(minutes=2), now) == "in 2 min"
    assert ago(None) == "never"
    assert span(7260) == "2 h 1 min"
    assert percent(0, 0) == "n/a"
    assert percent(97, 100) == "97 %"


def test_templates_escape_what_they_show() -> None:
    template = environment().from_string("<p>{{ value }}</p><pre>{{ payload | pretty_json }}</pre>")
    html = template.render(value="<script>x</script>", payload='{"name": "<b>"}')
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;" in html


def test_the_form_makes_subscriptions_from_boxes_scope_and_pattern_lines() -> None:
    project, job, other = str(uuid4()), str(uuid4()), str(uuid4())
    form = Form(
        {
            "event_type": ["project:one-off-job:failed", "project:created"],
            "project_uuid": [project],
            "job_uuid": [""],
            "patterns": [f"project:*:failed\n\nproject:cron-job:* {other} {job}\n"],
        }
    )
    subscriptions = WebhookFormValues.from_form(form).subscriptions()
    assert subscriptions == [
        {"event_type": "project:created", "project_uuid": project},
        {"event_type": "project:one-off-job:failed", "project_uuid": project},
        {"event_type": "project:*:failed", "project_uuid": project},
        {"event_type": "project:cron-job:*", "project_uuid": other, "job_uuid": job},
    ]


def test_every_catalog_type_has_one_box_in_a_family_with_its_scopes() -> None:
    families = catalog_families()
    names = [name for family in families for name in family.types]
    assert len(names) == len(set(names)) == 58
    scopes = {family.name: family.scopes for family in families}
    assert scopes["jupyter:image-build"] == "not scopable"
    assert scopes["project:cron-job"] == "scope: project or job"
    assert scopes["project"] == "scope: project"
