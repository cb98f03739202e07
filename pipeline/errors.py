"""The error tree, drawn once.

    PapermailError            anything the CLI can explain in one line
    ├── ConfigError           settings that cannot work (placeholder secret, bad URL, INBOUND_MAILDIR not a Maildir)
    ├── IngestError           a source could not be read at all, or not as asked (a page larger than the API serves)
    │   └── DayNotAvailable   the papers API has no list for that day (yet)
    ├── RenderError           a template failed to render, lost a placeholder, or got a value unfit for a header
    ├── IssueError            no issue for a date (or an id), nothing to rank, issue frozen
    ├── BacktestError         no stored history to judge the trend score on, or too few days of it
    ├── SubscriberError       an address that cannot be stored
    │   ├── Suppressed        it unsubscribed, bounced or was erased (pipeline.audience.subscribers)
    │   └── InvalidLink       a link's token is tampered, expired, of another purpose, or names nobody
    ├── InterestError         a reader's interest that cannot be kept (not an arXiv category, too long, one too many)
    ├── DeliveryError         a messenger could not be opened at all
    └── LeaseLost             a send batch's claim ran out and another sender settled its rows

Per-message failures are *not* exceptions: a batch returns SMTP failures as data
(see ``pipeline.delivery.messengers.SendResult``) so one bad address never stops a batch, and
what each piece of returned mail did comes back as lines (``pipeline.inbound.outcomes``). The
ValueErrors raised for such a message or address (``TooDeeplyNested``, ``UnsendableAddress``)
are caught where they are raised and become one of those results.
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


class BacktestError(PapermailError):
    exit_code = 65  # EX_DATAERR


class SubscriberError(PapermailError):
    exit_code = 65


class InvalidLink(SubscriberError):
    """A token that is tampered, expired, of another purpose, or names nobody: one answer for all of them."""


class InterestError(PapermailError):
    """An interest a reader typed that cannot be kept; the message is written for them (the form shows it)."""

    exit_code = 65


class DeliveryError(PapermailError):
    """The mail server could not be used at all. ``lasting``: retrying will not help (bad credentials)."""

    exit_code = 75  # EX_TEMPFAIL

    def __init__(self, message: str, *, lasting: bool = False) -> None:
        super().__init__(message)
        self.lasting = lasting


class LeaseLost(PapermailError):
    """A send batch's lease ran out and its rows were settled by someone else: the batch touches nothing more.

    Not a DeliveryError: nothing is wrong with the mail server, and retrying the batch would only find
    the rows taken (the reconciler plans what is still open).
    """

    exit_code = 75  # EX_TEMPFAIL
