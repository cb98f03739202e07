"""The ``papermail`` command run in a process of its own, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI_SECRET = "cli-test-secret-0123456789abcdef"
# Left out of the command's environment, so that it uses its embedded defaults unless a test says otherwise.
_SERVICES = {"DATABASE_URL", "BROKER_URL", "SMTP_URL", "OUTBOX_DIR"}


def papermail(cwd: Path, *args: str, env: dict[str, str] | None = None,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline ARGS`` in ``cwd``, its output captured as text.

    The environment is this process's without the service URLs and the outbox, with a test secret and
    ENVIRONMENT=test, then ``env`` on top (a worker's whole environment works too). With ``check``, an exit
    other than 0 fails the test with the command's output.
    """
    base = {k: v for k, v in os.environ.items() if k not in _SERVICES}
    base.update({"SECRET_KEY": CLI_SECRET, "ENVIRONMENT": "test"})
    base.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=base, capture_output=True,
                          text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"papermail {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc
