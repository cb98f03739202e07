import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import Subscriber

SECRET = "unit-test-secret-0123456789"
# RFC 3986's unreserved characters but "~": nothing a URL path (/u/{token}) or a mail header would have to escape.
URL_AND_HEADER_SAFE = re.compile(r"[A-Za-z0-9_.\-]+")
# Addresses as hostile as a stranger at the subscribe form likes, and ordinary ones.
ADDRESSES = st.emails() | st.builds("{}@{}".format, st.text(min_size=1), st.text(min_size=1))


class Clock:
    """A clock a test moves by hand (seconds since the epoch)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("purpose", list(Purpose))
def test_round_trip(purpose):
    signer = Signer(SECRET, purpose)
    assert signer.unsign(signer.sign("uid-123_abc")) == "uid-123_abc"


def test_a_token_of_one_purpose_is_refused_for_another():
    token = Signer(SECRET, Purpose.unsubscribe).sign("uid")
    assert Signer(SECRET, Purpose.preferences).unsign(token) is None
    assert Signer(SECRET, Purpose.confirm).unsign(token) is None


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: "other" + t[t.index("."):],
    lambda t: t.split(".")[0],
    lambda t: "",
    lambda t: t + "\r\n",
    lambda t: "ünïcode." + t,
])
def test_tampered_tokens_are_refused(mutate):
    signer = Signer(SECRET, Purpose.unsubscribe)
    assert signer.unsign(mutate(signer.sign("uid"))) is None


def test_another_secret_is_refused():
    assert Signer("another-secret", Purpose.unsubscribe).unsign(Signer(SECRET, Purpose.unsubscribe).sign("u")) is None


def test_confirm_tokens_expire():
    clock = Clock(1_700_000_000.0)
    signer = Signer(SECRET, Purpose.confirm, clock=clock)
    token = signer.sign("uid")
    assert signer.unsign(token, max_age=60) == "uid"
    clock.now += 1.1
    assert signer.unsign(token, max_age=0) is None


def test_a_confirm_token_is_stamped_and_aged_by_the_signers_clock():
    clock = Clock(1_700_000_000.0)
    signer = Signer(SECRET, Purpose.confirm, clock=clock)
    token = signer.sign("uid")
    clock.now += 60
    assert signer.unsign_timed(token, max_age=60) == ("uid", dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC))
    clock.now += 1
    assert signer.unsign(token, max_age=60) is None
    assert Signer(SECRET, Purpose.confirm, clock=lambda: clock.now - 61).unsign(token, max_age=60) == "uid"


@pytest.mark.parametrize("purpose", list(Purpose))
@given(address=ADDRESSES)
def test_tokens_never_hold_the_address(purpose, address):
    """A subscriber's token carries the opaque uid the model gives it: never the address, and nothing
    a link or a header would have to escape."""
    subscriber = Subscriber(email=address)
    token = Signer(SECRET, purpose).sign(subscriber.uid)
    assert address not in token and "@" not in token
    assert URL_AND_HEADER_SAFE.fullmatch(token), token
    assert Signer(SECRET, purpose).unsign(token) == subscriber.uid
