"""paper.withdrawn_at: a paper its source says is withdrawn is never featured again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('paper', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('paper', schema=None) as batch_op:
        batch_op.drop_column('withdrawn_at')
