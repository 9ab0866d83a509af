"""The ``event_types`` catalog table (rows inserted by migrations)."""

from sqlmodel import Field, SQLModel


class EventType(SQLModel, table=True):
    __tablename__ = "event_types"

    name: str = Field(primary_key=True)
    description: str
