"""Personal digests at bulk speed: issue.blocks (every candidate's card, rendered once), the selection
table (one row per distinct choice of papers, shared by its deliveries), delivery.selection_id, and the
reader's subscriber.mix and subscriber.send_anyway. issuevariant goes: a size is a selection now.

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
        batch_op.drop_column('blocks')
    with op.batch_alter_table('selection', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_selection_issue_id'))
    op.drop_table('selection')
