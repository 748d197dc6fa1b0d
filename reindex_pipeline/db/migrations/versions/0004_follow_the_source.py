"""Derived data follows the source: per-document index state (fingerprints, live vector slot) and an
outbox of source changes (deletions, re-owning, moves) written by triggers on ``documents``.

The triggers record a change in the same transaction as the change itself, whoever makes it (the app,
psql, a bulk job), so nothing is missed across daemon restarts; a hard ``DELETE`` is caught too.
Documents already deleted when this migration runs are queued for a purge: their derived data may
still be in the stores.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TRIGGER_FUNCTION = """
CREATE FUNCTION record_source_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO source_changes (document_id, kind) VALUES (OLD.id, 'purge');
        RETURN OLD;
    END IF;
    IF NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL THEN
        INSERT INTO source_changes (document_id, kind) VALUES (NEW.id, 'purge');
    ELSIF NEW.deleted_at IS NULL AND (NEW.owner_id IS DISTINCT FROM OLD.owner_id
                                      OR NEW.workspace_id IS DISTINCT FROM OLD.workspace_id) THEN
        INSERT INTO source_changes (document_id, kind) VALUES (NEW.id, 'access');
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "document_index_state",
        sa.Column(
            "document_id", UUID(as_uuid=True), sa.ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("extraction_fingerprint", sa.Text, nullable=True),
        sa.Column("vectors_fingerprint", sa.Text, nullable=True),
        sa.Column("graph_fingerprint", sa.Text, nullable=True),
        sa.Column("vector_collection", sa.Text, nullable=True, comment="collection holding the live points"),
        sa.Column("embedding_model", sa.Text, nullable=True),
        sa.Column("vector_points", sa.Integer, nullable=True),
        sa.Column("graph_pass_id", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_index_state_model", "document_index_state", ["embedding_model"])
    op.create_table(
        "source_changes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("document_id", UUID(as_uuid=True), nullable=False, comment="no FK: outlives a hard delete"),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.Text, nullable=True),
        sa.CheckConstraint("kind IN ('purge', 'access')", name="ck_source_changes_kind"),
    )
    op.create_index(
        "ix_source_changes_due",
        "source_changes",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.add_column(
        "reindex_queue",
        sa.Column(
            "stale_only",
            sa.Boolean,
            nullable=False,
            server_default=sa.false(),
            comment="skip phases whose fingerprint is unchanged",
        ),
    )
    op.execute(_TRIGGER_FUNCTION)
    op.execute(
        "CREATE TRIGGER documents_source_change AFTER UPDATE OF deleted_at, owner_id, workspace_id "
        "ON documents FOR EACH ROW EXECUTE FUNCTION record_source_change()"
    )
    op.execute(
        "CREATE TRIGGER documents_source_delete AFTER DELETE ON documents "
        "FOR EACH ROW EXECUTE FUNCTION record_source_change()"
    )
    op.execute(
        "INSERT INTO source_changes (document_id, kind) SELECT id, 'purge' FROM documents WHERE deleted_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS documents_source_delete ON documents")
    op.execute("DROP TRIGGER IF EXISTS documents_source_change ON documents")
    op.execute("DROP FUNCTION IF EXISTS record_source_change()")
    op.drop_column("reindex_queue", "stale_only")
    op.drop_table("source_changes")
    op.drop_table("document_index_state")
