import time

import pytest

from pipeline.audience.tokens import Purpose, Signer

SECRET = "unit-test-secret-0123456789"


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
    signer = Signer(SECRET, Purpose.confirm)
    token = signer.sign("uid")
    assert signer.unsign(token, max_age=60) == "uid"
    time.sleep(1.1)
    assert signer.unsign(token, max_age=0) is None


def test_tokens_never_hold_the_address():
    assert "@" not in Signer(SECRET, Purpose.unsubscribe).sign("opaque")
