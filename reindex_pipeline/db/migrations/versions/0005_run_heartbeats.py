"""Reindex runs' heartbeats: a run worker killed without a word (kill -9, OOM, a lost machine) is noticed.

The reindex step beats every few seconds while it works and removes its row when it ends. A row gone silent
belongs to a worker that died: the ``reindex_run_watch`` sensor marks that run failed in Dagster, so the
queue retries it and the next run takes over the documents it left ``indexing``.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reindex_run_heartbeats",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_run_heartbeats_beat_at", "reindex_run_heartbeats", ["beat_at"])


def downgrade() -> None:
    op.drop_table("reindex_run_heartbeats")
