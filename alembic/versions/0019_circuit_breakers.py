"""Circuit breakers: a webhook that keeps failing is left alone, on every replica, until a probe.

- ``subscribers.circuit_state`` (``closed``, ``open``, ``half-open``), ``circuit_since``,
  ``circuit_next_probe_at``, ``circuit_failures`` (consecutive failed attempts) and
  ``circuit_probes`` (failed probes since it opened: the wait before the next one doubles).
- ``ix_subscribers_circuit_probe``: the circuits that are not closed, by their next probe; a
  claim reads it to find the probes that are due (one index read, however many are open).
- Two operational types, ``herald:subscriber:circuit-opened`` and ``-closed`` (written out here,
  not imported, so that this migration keeps meaning what it meant when it was written).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPERATIONAL_TYPES = (
    (
        "herald:subscriber:circuit-opened",
        "A webhook's circuit opened: HERALD_CIRCUIT_FAILURES attempts in a row failed.",
    ),
    ("herald:subscriber:circuit-closed", "A webhook's circuit closed: it answered again."),
)


def upgrade() -> None:
    # Constant defaults: no table rewrite.
    op.add_column(
        "subscribers", sa.Column("circuit_state", sa.Text(), server_default="closed", nullable=False)
    )
    op.add_column("subscribers", sa.Column("circuit_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "subscribers", sa.Column("circuit_next_probe_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "subscribers",
        sa.Column("circuit_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "subscribers", sa.Column("circuit_probes", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.create_check_constraint(
        "ck_subscribers_circuit_state", "subscribers", "circuit_state IN ('closed', 'open', 'half-open')"
    )
    op.create_index(
        "ix_subscribers_circuit_probe",
        "subscribers",
        ["circuit_next_probe_at"],
        postgresql_where=sa.text("circuit_state <> 'closed'"),
    )
    event_types = sa.table("event_types", sa.column("name", sa.Text()), sa.column("description", sa.Text()))
    op.bulk_insert(event_types, [{"name": n, "description": d} for n, d in OPERATIONAL_TYPES])


def downgrade() -> None:
    names = ", ".join(f"'{name}'" for name, _ in OPERATIONAL_TYPES)
    op.execute(f"DELETE FROM operational_counts WHERE type IN ({names})")  # noqa: S608  (constants)
    op.execute(f"DELETE FROM event_types WHERE name IN ({names})")  # noqa: S608  (constants)
    op.drop_index("ix_subscribers_circuit_probe", table_name="subscribers")
    op.drop_constraint("ck_subscribers_circuit_state", "subscribers", type_="check")
    for column in ("circuit_probes", "circuit_failures", "circuit_next_probe_at", "circuit_since"):
        op.drop_column("subscribers", column)
    op.drop_column("subscribers", "circuit_state")
