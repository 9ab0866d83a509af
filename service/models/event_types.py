"""The ``event_types`` catalog table (rows inserted by migrations)."""

from sqlalchemy import Text
from sqlmodel import Field, SQLModel


class EventType(SQLModel, table=True):
    __tablename__ = "event_types"

    name: str = Field(primary_key=True, sa_type=Text)
    description: str = Field(sa_type=Text)
