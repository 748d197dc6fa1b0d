"""Reindex runs' progress: what each run has done so far, written as each batch of documents commits.

One row per run (not per document: a full reindex of a million documents adds a few thousand rows). The
queue's outcomes sensor, ``status`` and ``history`` read a request's runs from here, during the run and
after it; the audit log keeps its events for people, and is no longer the channel a run reports through.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reindex_run_progress",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("request_id", UUID(as_uuid=False), nullable=True),
        sa.Column("attempt", sa.Text, nullable=True),  # the queue's attempt tag: one claim of the request
        sa.Column("planned", sa.Integer, nullable=False),
        sa.Column("completed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("failures", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("model_usage", JSONB, nullable=True),
        sa.Column("reports", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_run_progress_request", "reindex_run_progress", ["request_id", "attempt"])
    op.create_index("ix_run_progress_started", "reindex_run_progress", ["started_at"])


def downgrade() -> None:
    op.drop_table("reindex_run_progress")
