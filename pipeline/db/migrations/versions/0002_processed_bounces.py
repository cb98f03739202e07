"""Bounce messages already counted (pipeline.models.ProcessedBounce).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 01:22:10.297523
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not op.get_context().as_sql and sa.inspect(op.get_bind()).has_table('processedbounce'):
        return  # made by hand (ProcessedBounce.__table__.create) before this revision existed
    op.create_table('processedbounce',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('processed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )


def downgrade() -> None:
    op.drop_table('processedbounce')
