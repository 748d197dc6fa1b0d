"""App schema: tenants, users, documents with their preserved OCR output, derived data, audit, queue.

Tenancy (docs/tenancy.md): the app's org/project map to organizations/workspaces;
``project_id`` columns hold a workspace id.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _uuid_pk() -> sa.Column:
    return sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()"))


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "organizations",
        _uuid_pk(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("slug", sa.Text, nullable=False, unique=True),
        *_timestamps(),
    )
    op.create_table(
        "users",
        _uuid_pk(),
        sa.Column("org_id", UUID(as_uuid=True), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("role", sa.Text, nullable=False, server_default="user"),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        *_timestamps(),
        sa.CheckConstraint(_in("role", ("admin", "user")), name="ck_users_role"),
        sa.CheckConstraint(_in("status", ("active", "inactive", "suspended")), name="ck_users_status"),
    )
    op.create_table(
        "workspaces",
        _uuid_pk(),
        sa.Column("org_id", UUID(as_uuid=True), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_by", UUID(as_uuid=True), sa.ForeignKey("users.id"), nullable=True),
        *_timestamps(),
        sa.UniqueConstraint("org_id", "name", name="uq_workspaces_org_name"),
    )
    op.create_table(
        "documents",
        _uuid_pk(),
        sa.Column("workspace_id", UUID(as_uuid=True), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("owner_id", UUID(as_uuid=True), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("mime_type", sa.Text, nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("content_sha256", sa.Text, nullable=True),
        sa.Column("source_key", sa.Text, nullable=True, comment="bucket key of a restored file"),
        sa.Column("convert_status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("index_status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("indexing_details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("extraction_status", sa.Text, nullable=True),
        sa.Column("classification", sa.Text, nullable=True),
        sa.Column("extraction_schema_type", sa.Text, nullable=True),
        sa.Column("extractor_name", sa.Text, nullable=True),
        sa.Column("extractor_version", sa.Text, nullable=True),
        sa.Column("document_metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            _in("convert_status", ("pending", "converting", "converted", "failed")), name="ck_documents_convert"
        ),
        sa.CheckConstraint(
            _in("index_status", ("pending", "indexing", "indexed", "failed")), name="ck_documents_index"
        ),
    )
    op.create_index("ix_documents_workspace", "documents", ["workspace_id"])
    op.create_index("ix_documents_owner", "documents", ["owner_id"])
    op.create_index(
        "ix_documents_eligible",
        "documents",
        ["convert_status", "index_status"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index("ix_documents_updated", "documents", ["updated_at", "id"])

    # Preserved OCR output: written once by conversion, never by a reindex.
    op.create_table(
        "pages",
        _uuid_pk(),
        sa.Column("document_id", UUID(as_uuid=True), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("page_number", sa.Integer, nullable=False),
        sa.Column("markdown", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("document_id", "page_number", name="uq_pages_document_page"),
    )
    op.create_table(
        "chunks",
        _uuid_pk(),
        sa.Column("document_id", UUID(as_uuid=True), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("page_id", UUID(as_uuid=True), sa.ForeignKey("pages.id", ondelete="CASCADE"), nullable=True),
        sa.Column("chunk_index", sa.Integer, nullable=False),
        sa.Column("chunk_content", sa.Text, nullable=False),
        sa.Column("chunk_metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("document_id", "chunk_index", name="uq_chunks_document_index"),
    )

    # Derived data: rebuilt by a reindex.
    op.create_table(
        "documents_data",
        _uuid_pk(),
        sa.Column("document_id", UUID(as_uuid=True), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("field_name", sa.Text, nullable=False),
        sa.Column("field_value", sa.Text, nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("extractor_version", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("document_id", "field_name", name="uq_documents_data_field"),
    )
    op.create_table(
        "documents_data_line_items",
        _uuid_pk(),
        sa.Column("document_id", UUID(as_uuid=True), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("line_number", sa.Integer, nullable=False),
        sa.Column("field_data", JSONB, nullable=False),
        sa.Column("extractor_version", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("document_id", "line_number", name="uq_line_items_line"),
    )
    op.create_table(
        "document_status_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("document_id", UUID(as_uuid=True), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_status", sa.Text, nullable=True),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("phase", sa.Text, nullable=True),
        sa.Column("run_id", sa.Text, nullable=True),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_status_log_document", "document_status_log", ["document_id", "created_at"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("org_id", UUID(as_uuid=True), nullable=True),
        sa.Column("project_id", UUID(as_uuid=True), nullable=True, comment="workspace id"),
        sa.Column("actor_id", UUID(as_uuid=True), nullable=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_audit_kind_time", "audit_events", ["kind", "created_at"])
    op.create_index("ix_audit_project_time", "audit_events", ["project_id", "created_at"])

    # The app's queue table, plus what the request flow needs.
    op.create_table(
        "reindex_queue",
        _uuid_pk(),
        sa.Column("org_id", UUID(as_uuid=True), nullable=False),
        sa.Column("project_id", UUID(as_uuid=True), nullable=True, comment="workspace id; NULL with scope 'all'"),
        sa.Column("artifact_id", UUID(as_uuid=True), nullable=True, comment="a document id"),
        sa.Column("stored_key", sa.Text, nullable=True, comment="org/<org>/project/<ws>/restores/<ts>__<file>"),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("requested_by", UUID(as_uuid=True), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("scope", sa.Text, nullable=False, server_default="documents"),
        sa.Column("document_ids", ARRAY(UUID(as_uuid=True)), nullable=True),
        sa.Column(
            "phases",
            ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("ARRAY['extraction','vector_indexing','graphrag_indexing']"),
        ),
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source", sa.Text, nullable=False, server_default="app"),
        sa.Column("lease_owner", sa.Text, nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_ids", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("counts", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            _in("status", ("pending", "running", "done", "failed", "refused")), name="ck_reindex_queue_status"
        ),
        sa.CheckConstraint(_in("scope", ("documents", "workspace", "all", "restore")), name="ck_reindex_queue_scope"),
    )
    op.create_index("idx_reindex_pending", "reindex_queue", ["project_id", "status", "scheduled_at"])
    op.create_index("idx_reindex_due", "reindex_queue", ["status", "priority", "scheduled_at"])


def downgrade() -> None:
    for table in (
        "reindex_queue",
        "audit_events",
        "document_status_log",
        "documents_data_line_items",
        "documents_data",
        "chunks",
        "pages",
        "documents",
        "workspaces",
        "users",
        "organizations",
    ):
        op.drop_table(table)
