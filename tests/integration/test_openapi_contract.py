"""The OpenAPI schema is true: every answer the site and the admin API give is one it documents.

Schemathesis generates requests for every operation from /openapi.json (valid
ones, and ones the schema says are invalid), sends them to the ASGI app and
checks each answer: no 5xx; its status, content type, headers and body as
documented; schema-valid input accepted and invalid input refused; a 405 with
``Allow`` for the methods the schema does not list; the admin API refusing a
request without its token. Bounded and seeded, so a run is the same every time
and takes seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from pipeline.audience.tokens import Purpose, Signer
from pipeline.settings import Settings
from pipeline.web import create_app
from tests.support.web import add

ADMIN_TOKEN = "contract-test-admin-token-0123456789abcdef"
READER_UID = "contractReader0000000001"
LINK_PURPOSES = {"confirm": Purpose.confirm, "u": Purpose.unsubscribe, "p": Purpose.preferences,
                 "f": Purpose.feedback}

# Where the schema cannot say what is valid, the check is told which refusals are right:
POSITIVE_DATA_REFUSALS = [
    # A token in a link is any string to the schema, but only a signed one names somebody: anything else
    # gets the generic "not valid" page, and must (a guessable token would be a hole). The preferences
    # form also refuses values out of range that its plain-string fields cannot describe, an interest
    # that is not one, and a feedback link a paper id or a vote that is not one.
    {"include-path-regex": r"^/(confirm|u|p|f)/", "statuses": ["400"]},
    # A string the form field accepts need not be an email address (RFC 5321), nor one that can get mail.
    {"include-path": "/subscribe", "statuses": ["400"]},
    # Resend rules that span fields: scope `all` only with `force`, a `reason` unless it is a dry run.
    {"include-path": "/admin/issues/{day}/resend", "statuses": ["400"]},
]
ACCEPTED_BY_DEFAULT = ["2xx", "3xx", "401", "403", "404", "409", "429"]  # schemathesis's own list, minus 5xx
# Schemathesis's list of right refusals of invalid input, plus 413: a generated body over MAX_BODY_BYTES is
# refused before anything reads it, which is a refusal too.
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


def contract_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": 20250321,
        "generation": {"max-examples": 30, "deterministic": True},
        "auth": {"openapi": {"adminToken": {"bearer": ADMIN_TOKEN}}},
        "checks": {"negative_data_rejection": {"expected-statuses": REFUSED}},
        "operations": [
            {key: value for key, value in refusal.items() if key != "statuses"}
            | {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_BY_DEFAULT + refusal["statuses"]}}}
            for refusal in POSITIVE_DATA_REFUSALS
        ],
    })


def contract_settings(**values: object) -> Settings:
    # Rate limits high enough not to trip within a run: their 429s are documented, but they would keep
    # every later case from reaching the route. Wrong tokens are sent on purpose (is auth ignored?).
    return Settings(_env_file=None, environment="test", secret_key="contract-test-secret-" + "k" * 24,
                    base_url="https://papers.example.org", mail_from="Papers <digest@papers.example.org>",
                    admin_token=ADMIN_TOKEN, subscribe_rate_limit="100000/minute",
                    admin_auth_failure_limit="100000/minute", broker_url=None, smtp_url=None,
                    **values)  # type: ignore[arg-type]


# Read once, at collection, from an app that is never called; each operation's cases go to an app of
# their own over a fresh database (``app=`` below).
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(contract_settings()), config=contract_config())


@schema.hook
def flatmap_path_parameters(context, path_parameters):  # noqa: ANN001, ANN201
    """Half the link tokens genuine, naming the reader the app starts with, so the pages behind them run too."""
    purpose = LINK_PURPOSES.get(context.operation.path.strip("/").split("/")[0])
    if purpose is None or "token" not in path_parameters:
        return st.just(path_parameters)
    genuine = {**path_parameters, "token": Signer(contract_settings().secret_key, purpose).sign(READER_UID)}
    return st.sampled_from([path_parameters, genuine])


@pytest.fixture
def app(tmp_path):
    cfg = contract_settings(database_url=f"sqlite:///{tmp_path / 'papermail.db'}", outbox_dir=tmp_path / "outbox")
    add(cfg, "reader@example.org", uid=READER_UID)
    return create_app(cfg, send_confirmation=lambda _id: None)


@schema.parametrize()
# No deadline: a slow answer on a busy machine is not a wrong one (speed is measured by benches, never here).
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)  # one app per operation
def test_every_answer_is_documented(case, app):
    case.call_and_validate(app=app)
