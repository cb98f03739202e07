"""Personal digests at bulk speed: issue.blocks (every candidate's card, rendered once), issue.catch_up
(the best of the week's earlier dailies, for readers back from a pause), the selection
table (one row per distinct choice of papers, shared by its deliveries), delivery.selection_id, the
reader's subscriber.mix and subscriber.send_anyway, and readermodel (each reader's relevance model, kept
until their votes change). issuevariant goes: a size is a selection now.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('readermodel',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('basis', sa.JSON(), nullable=False),
    sa.Column('trained_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ),
    sa.PrimaryKeyConstraint('subscriber_id')
    )
    op.create_table('selection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('picks', sa.JSON(), nullable=False),
    sa.Column('papers', sa.JSON(), nullable=False),
    sa.Column('personal', sa.Boolean(), nullable=False),
    sa.Column('readers', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issue_id', 'key')
    )
    with op.batch_alter_table('selection', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_selection_issue_id'), ['issue_id'], unique=False)
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blocks', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('catch_up', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('selection_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_delivery_selection_id_selection', 'selection', ['selection_id'], ['id'])
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mix', sa.Integer(), nullable=False, server_default='50'))
        batch_op.add_column(sa.Column('send_anyway', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('issuevariant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issuevariant_issue_id'))
    op.drop_table('issuevariant')


def downgrade() -> None:
    op.create_table('issuevariant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issue_id', 'size')
    )
    with op.batch_alter_table('issuevariant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issuevariant_issue_id'), ['issue_id'], unique=False)
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.drop_column('send_anyway')
        batch_op.drop_column('mix')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint('fk_delivery_selection_id_selection', type_='foreignkey')
        batch_op.drop_column('selection_id')
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.drop_column('catch_up')
        batch_op.drop_column('blocks')
    with op.batch_alter_table('selection', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_selection_issue_id'))
    op.drop_table('selection')
    op.drop_table('readermodel')
