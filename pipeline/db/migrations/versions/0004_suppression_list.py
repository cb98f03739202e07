"""The suppression list (pipeline.models.Suppression) and subscriber.requested_at.

Every address that is unsubscribed or bounced today gets its record. An address that
unsubscribed, was asked for again through the form and never confirmed was left
``pending`` by earlier versions (an import could then make it active): it goes back to
``unsubscribed``, which is what its owner last said.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:02:18.775960
"""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# As pipeline.audience.suppression.address_hash computes it (a test checks that the two agree).
_PREFIX = b"papermail-suppression:"


def address_hash(address: str) -> str:
    return hashlib.sha256(_PREFIX + address.encode("utf-8")).hexdigest()


def upgrade() -> None:
    op.create_table('suppression',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Enum('unsubscribed', 'bounced', 'removed', name='suppressionreason', native_enum=False,
                                length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('lifted_at', sa.DateTime(), nullable=True),
    sa.Column('lifted_by', sa.String(length=100), nullable=True),
    sa.Column('lifted_note', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('address_hash')
    )
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_at', sa.DateTime(), nullable=True))
    if op.get_context().as_sql:
        return  # offline SQL: there are no rows to read
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE subscriber SET status = 'unsubscribed' "
                         "WHERE status = 'pending' AND unsubscribed_at IS NOT NULL"))
    rows = bind.execute(sa.text("SELECT email, status, coalesce(unsubscribed_at, updated_at) FROM subscriber "
                                "WHERE status IN ('unsubscribed', 'bounced')")).all()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if rows:
        bind.execute(sa.text("INSERT INTO suppression (address_hash, reason, created_at) VALUES (:h, :r, :t)"),
                     [{"h": address_hash(email), "r": status, "t": when or now} for email, status, when in rows])


def downgrade() -> None:
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.drop_column('requested_at')
    op.drop_table('suppression')
