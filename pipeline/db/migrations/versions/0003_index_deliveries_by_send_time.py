"""Index deliveries by (issue, sent_at): `papermail status` counts the last minute's sends.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 03:11:06.750249
"""

from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_issue_sent_at', ['issue_id', 'sent_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_issue_sent_at')

