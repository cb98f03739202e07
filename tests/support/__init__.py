"""The harness the tests and the benches share; tests import helpers from here, never from one another.

    paths.py     where things are: the repository root, the recorded fixtures
    services.py  real local services: free ports, waiting on them, a private redis-server, a fresh PostgreSQL
                 database, ``celery worker`` processes and their environment (standard library only at import,
                 so the benches can use it without changing what they measure)
    smtp.py      a real SMTP server (aiosmtpd) that records what it is sent and answers as scripted
    cli.py       the ``papermail`` command run in a process of its own
    sending.py   an issue built and sent in-process: subscribers, the sample day, the ledger's counts
    bounces.py   the sample bounce reports, a subscriber the issue went to, ``papermail bounces``
    web.py       the site's tests: subscribers in a given state, tokens, a snapshot of the table, a mail recorder

conftest.py turns these into fixtures.
"""
