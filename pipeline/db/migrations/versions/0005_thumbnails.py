"""Papers' thumbnails and organizations: the image table and three paper columns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 14:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('image',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('source_url', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('digest')
    )
    with op.batch_alter_table('paper', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organization', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('thumbnail_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('thumbnail', sa.String(length=64), nullable=True))
        batch_op.create_foreign_key('fk_paper_thumbnail_image', 'image', ['thumbnail'], ['digest'])


def downgrade() -> None:
    with op.batch_alter_table('paper', schema=None) as batch_op:
        batch_op.drop_constraint('fk_paper_thumbnail_image', type_='foreignkey')
        batch_op.drop_column('thumbnail')
        batch_op.drop_column('thumbnail_url')
        batch_op.drop_column('organization')
    op.drop_table('image')
