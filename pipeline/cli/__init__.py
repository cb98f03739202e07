"""The ``papermail`` command.

Work goes through the runner BROKER_URL chooses (``pipeline.service.runner``): in this
process when it is unset, queued for ``celery -A workers worker`` when it is set.
Errors a user can cause end in one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import logging
import sys

from pipeline.cli import backtest, daily, operators, subscribers  # noqa: F401  (each registers its commands)
from pipeline.cli.base import TerminalLogHandler, app, err, reflow_help, subscribers_app
from pipeline.errors import PapermailError

reflow_help(app, subscribers_app)


def main() -> None:
    ours = logging.getLogger("pipeline")
    if not ours.handlers and not logging.getLogger().handlers:  # unless logging was set up by whoever runs us
        ours.addHandler(TerminalLogHandler(logging.WARNING))  # the libraries' own chatter stays where it was
    try:
        app()
    except PapermailError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
