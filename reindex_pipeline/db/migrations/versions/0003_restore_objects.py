"""Restores-bucket objects already handled: the sensor processes each (key, fingerprint) exactly once.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "restore_objects",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("stored_key", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False, comment="etag, or size and mtime, from the listing"),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("content_sha256", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("org_id", UUID(as_uuid=True), nullable=True),
        sa.Column("project_id", UUID(as_uuid=True), nullable=True),
        sa.Column("document_id", UUID(as_uuid=True), sa.ForeignKey("documents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("request_id", UUID(as_uuid=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("stored_key", "fingerprint", name="uq_restore_objects_key_fingerprint"),
        sa.CheckConstraint("status IN ('ingested', 'rejected', 'failed')", name="ck_restore_objects_status"),
    )


def downgrade() -> None:
    op.drop_table("restore_objects")
