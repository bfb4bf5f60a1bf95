"""audit events are append-only

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 21:35:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION kefu_platform.audit_events_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER audit_events_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON kefu_platform.audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION kefu_platform.audit_events_append_only()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_events_append_only ON kefu_platform.audit_events")
    op.execute("DROP FUNCTION kefu_platform.audit_events_append_only()")
