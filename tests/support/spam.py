"""SpamAssassin's local tests (Debian's ``spamassassin``, ``-L``: no network rules) as a receiver runs them."""

from __future__ import annotations

import re
import shutil
import subprocess

_SCORE = re.compile(r"Content analysis details:\s+\((-?[\d.]+) points")
_RULE = re.compile(r"^\s*(-?[\d.]+)\s+([A-Z0-9_]+)\s", re.MULTILINE)


def spam_report(message: bytes) -> tuple[float, dict[str, float]]:
    """(score, {rule: points}) of ``message`` under ``spamassassin -L -t``."""
    if shutil.which("spamassassin") is None:
        raise AssertionError("Debian's spamassassin is needed to score mail: apt-get install spamassassin "
                             "(./scripts/test installs it)")
    out = subprocess.run(["spamassassin", "-L", "-t"], input=message, capture_output=True, timeout=120,
                         check=True).stdout.decode("utf-8", "replace")
    report = out[out.rindex("Content analysis details:"):]
    score = float(_SCORE.search(report).group(1))  # type: ignore[union-attr]
    return score, {name: float(points) for points, name in _RULE.findall(report) if float(points)}
