"""Portal links as requests and answers. The link's URL (its token) is in the create answer only."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from service.models.portal_links import PortalLink

LIFETIME_MIN_SECONDS = 300
LIFETIME_MAX_SECONDS = 604_800
LIFETIME_DEFAULT_SECONDS = 3600


class PortalLinkCreate(BaseModel):
    """A new one-time link to a project's portal."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"project_uuid": "0d8a9f4e-6a77-4c1e-b0a5-3f0e2c9d1b22", "read_only": True}]
        },
    )

    project_uuid: UUID = Field(description="The project whose portal the link opens.")
    expires_in_seconds: int = Field(
        default=LIFETIME_DEFAULT_SECONDS,
        ge=LIFETIME_MIN_SECONDS,
        le=LIFETIME_MAX_SECONDS,
        description="How long the link, and the portal session it opens, lasts (300 to 604800 s).",
    )
    read_only: bool = Field(default=False, description="The portal may look but change nothing.")


class PortalLinkOut(BaseModel):
    """A portal link (never its token)."""

    uuid: UUID
    project_uuid: UUID
    read_only: bool
    expires_at: datetime = Field(description="When the link and its session end.")
    created_at: datetime
    used_at: datetime | None = Field(description="When the link was exchanged for a session; null before.")
    revoked_at: datetime | None


class PortalLinkCreated(PortalLinkOut):
    """The new link with its URL: the only answer that ever shows it."""

    url: str = Field(description="Absolute; opens the portal once, for the visitor who opens it first.")


class PortalLinkPage(BaseModel):
    items: list[PortalLinkOut]
    next_cursor: str | None


def portal_link_out(link: PortalLink) -> PortalLinkOut:
    return PortalLinkOut.model_validate(link, from_attributes=True)
