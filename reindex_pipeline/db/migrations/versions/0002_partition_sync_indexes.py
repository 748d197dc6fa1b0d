"""Indexes for the documents-partition sensor's cursors (created and deleted, in order).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_documents_created", "documents", ["created_at", "id"])
    op.create_index(
        "ix_documents_deleted", "documents", ["deleted_at", "id"], postgresql_where=sa.text("deleted_at IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_documents_deleted", table_name="documents")
    op.drop_index("ix_documents_created", table_name="documents")
