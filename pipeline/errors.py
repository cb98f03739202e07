"""The error tree, drawn once.

    PapermailError            anything the CLI can explain in one line
    ├── ConfigError           settings that cannot work (placeholder secret, bad URL)
    ├── IngestError           a source could not be read at all
    │   └── DayNotAvailable   the papers API has no list for that day (yet)
    ├── RenderError           a template failed to render or lost a placeholder
    ├── IssueError            no issue for a date, nothing to rank, issue frozen
    ├── SubscriberError       an address that cannot be stored
    └── DeliveryError         a messenger could not be opened at all

Per-message SMTP failures are *not* exceptions: a batch returns them as data
(see ``pipeline.delivery.messengers.SendResult``) so one bad address never stops a batch.
"""


class PapermailError(Exception):
    """Base of every error the CLI turns into a one-line message."""

    exit_code = 1


class ConfigError(PapermailError):
    exit_code = 78  # EX_CONFIG


class IngestError(PapermailError):
    exit_code = 69  # EX_UNAVAILABLE


class DayNotAvailable(IngestError):
    pass


class RenderError(PapermailError):
    exit_code = 70  # EX_SOFTWARE


class IssueError(PapermailError):
    exit_code = 65  # EX_DATAERR


class SubscriberError(PapermailError):
    exit_code = 65


class DeliveryError(PapermailError):
    """The mail server could not be used at all. ``lasting``: retrying will not help (bad credentials)."""

    exit_code = 75  # EX_TEMPFAIL

    def __init__(self, message: str, *, lasting: bool = False) -> None:
        super().__init__(message)
        self.lasting = lasting
