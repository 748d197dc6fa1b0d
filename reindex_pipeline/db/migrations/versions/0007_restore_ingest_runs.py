"""Restored files are ingested by runs, not inside the sensor's tick.

The restores sensor records each new object as ``pending`` (exactly once per key and fingerprint, as before)
and launches ``restore_ingest`` runs over batches of them; the run parses (and OCRs) each file, stores the
document and marks the object ``ingested`` or ``failed``. ``launched_at`` lets the sensor launch again a
batch whose run never came; ``run_id`` names the run that handled the object; ``pages`` and ``ocr_pages``
say what it found. ``restore_folders`` holds a local bucket's folders as last listed; ``document_einvoices``
an e-invoice's XML beside its document's pages.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("ck_restore_objects_status", "restore_objects", type_="check")
    op.create_check_constraint(
        "ck_restore_objects_status", "restore_objects", "status IN ('pending', 'ingested', 'rejected', 'failed')"
    )
    op.add_column("restore_objects", sa.Column("launched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("restore_objects", sa.Column("run_id", sa.Text, nullable=True))
    op.add_column("restore_objects", sa.Column("pages", sa.Integer, nullable=True))
    op.add_column("restore_objects", sa.Column("ocr_pages", sa.Integer, nullable=True))
    op.create_index(
        "ix_restore_objects_pending", "restore_objects", ["id"], postgresql_where=sa.text("status = 'pending'")
    )
    op.create_index("ix_restore_objects_processed", "restore_objects", ["processed_at"])
    op.create_index(
        "ix_restore_objects_unqueued",
        "restore_objects",
        ["id"],
        postgresql_where=sa.text("status = 'ingested' AND request_id IS NULL"),
    )
    # A local bucket's restores folders and their modification time when last listed: a tick lists only the
    # folders whose time changed (reindex_pipeline/ingest/bucket_listing.py).
    op.create_table(
        "restore_folders",
        sa.Column("folder", sa.Text, primary_key=True),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )

    # An e-invoice's XML (a Factur-X / ZUGFeRD PDF's attachment, or a restored XRechnung / UBL file): preserved
    # beside the pages, so a reindex reads its fields without the original file.
    op.create_table(
        "document_einvoices",
        sa.Column(
            "document_id", UUID(as_uuid=True), sa.ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("syntax", sa.Text, nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
        sa.Column("xml_sha256", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("document_einvoices")
    op.drop_table("restore_folders")
    op.drop_index("ix_restore_objects_unqueued", "restore_objects")
    op.drop_index("ix_restore_objects_processed", "restore_objects")
    op.drop_index("ix_restore_objects_pending", "restore_objects")
    op.execute(
        "UPDATE restore_objects SET status = 'failed', error = 'not ingested before a downgrade' "
        "WHERE status = 'pending'"
    )
    for column in ("ocr_pages", "pages", "run_id", "launched_at"):
        op.drop_column("restore_objects", column)
    op.drop_constraint("ck_restore_objects_status", "restore_objects", type_="check")
    op.create_check_constraint(
        "ck_restore_objects_status", "restore_objects", "status IN ('ingested', 'rejected', 'failed')"
    )
