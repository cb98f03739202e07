import datetime as dt

import pytest

from pipeline.compose.message_ids import MessageRef, make_message_id, read_message_id
from pipeline.models import Edition

DAY = dt.date(2025, 3, 21)
UID = "x4Jm2bQv9TzL0aR7cN1pWg"


@pytest.mark.parametrize(("edition", "resend_id", "expected"), [
    (Edition.daily, None, f"20250321.{UID}@papers.example.org"),
    (Edition.weekly, None, f"20250321w.{UID}@papers.example.org"),
    (Edition.daily, 7, f"20250321.{UID}.r7@papers.example.org"),
])
def test_each_copy_has_its_own_id_and_it_reads_back(edition, resend_id, expected):
    made = make_message_id(day=DAY, edition=edition, uid=UID, resend_id=resend_id, domain="papers.example.org")
    assert made == expected
    assert read_message_id(f"<{made}>", domain="Papers.Example.org") == MessageRef(DAY, edition, UID, resend_id)


@pytest.mark.parametrize("value", [
    None, "", f"20250321.{UID}@elsewhere.example.com",  # another sender's domain
    f"20251399.{UID}@papers.example.org",  # no such date
    "20250321.short@papers.example.org", f"2025-03-21.{UID}@papers.example.org",
    f"20250321.{UID}.rX@papers.example.org", f"20250321.{UID}@papers.example.org trailing",
    "67dd0e8a.5d0a0220.2f1c4b.0c3e.GMR@mx.google.com",
])
def test_ids_that_are_not_ours_read_as_none(value):
    assert read_message_id(value, domain="papers.example.org") is None
