"""The command's shared ground: the Typer apps, consoles that print only safe text, common options, settings."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline import service
from pipeline.errors import ConfigError
from pipeline.models import Edition, utcnow
from pipeline.settings import Settings, get_settings
from pipeline.text import terminal_text

app = typer.Typer(
    help="papermail: a daily email of the machine-learning papers that are trending.\n\n"
    "The daily job is: ingest -> rank -> build (render once) -> send. `papermail run` does all of it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
subscribers_app = typer.Typer(help="Add, import and list subscribers.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")


class TerminalConsole(Console):
    """A console for lines that carry text from outside: addresses, bounce reports, SMTP replies,
    paper titles and subjects, file names, error messages quoting any of them.

    Every string printed goes through :func:`~pipeline.text.terminal_text` first, so a forged
    bounce cannot send ``ESC ]0;...`` or ``ESC [2J`` to the operator's terminal, nor start a
    line of its own; and none is read as Rich markup or emoji codes ("[link=...]", ":x:").
    One line per call.
    """

    def print(self, *objects: Any, markup: bool | None = False, highlight: bool | None = False,
              emoji: bool | None = False, **options: Any) -> None:
        safe = [terminal_text(o) if isinstance(o, str) else o for o in objects]
        super().print(*safe, markup=markup, highlight=highlight, emoji=emoji, **options)


out = TerminalConsole(soft_wrap=True)
err = TerminalConsole(stderr=True, soft_wrap=True)


class TerminalLogHandler(logging.Handler):
    """Log records as one line each on ``err``, a traceback summed up by its exception.

    Without a handler, logging's last resort writes a warning's whole traceback to the
    terminal, with whatever text from outside its exception quotes (a bounce's made-up
    charset, say), escapes included.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.levelname.lower()}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                line += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            err.print(line)
        except Exception:  # noqa: BLE001  logging must never stop the command
            self.handleError(record)


DEMO_SUBSCRIBERS = ("ada@example.org", "grace@example.org", "alan@example.org")

DateOpt = Annotated[
    str | None,
    typer.Option("--date", help="The day whose papers the issue ranks (YYYY-MM-DD). Default: yesterday (UTC)."),
]
EditionOpt = Annotated[
    Edition,
    typer.Option("--edition", help="daily (the day's papers) or weekly (the seven days up to --date)."),
]
SourceOpt = Annotated[
    str,
    typer.Option(
        "--source",
        help="Where papers come from: hf (Hugging Face daily papers), arxiv (arXiv categories from settings), "
        "sample (the bundled real sample of 2025-03-21, offline), file:PATH (a saved daily-papers JSON) or "
        "file:DIR (a folder of snapshots named hf_daily_papers_<day>_<HHMM>Z.json: the day's, oldest first; "
        "for ingest without --date, every day's).",
    ),
]


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).upper() or "settings"
        raise ConfigError(f"bad setting {where}: {first['msg']}") from None


def parse_day(value: str | None, *, source: str | None = None) -> dt.date:
    if value is None:
        return service.sample_day() if source == service.SAMPLE else service.default_day(utcnow())
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2025-03-21", param_hint="--date") from None


def eager(cfg: Settings) -> bool:
    return cfg.broker_url is None


def progress_bar() -> Progress:
    """A bar on standard error, shown only when that is a terminal (never in a script's captured output)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # Not redirecting stdout: an export may be writing its CSV there.
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal, redirect_stdout=False,
                    redirect_stderr=False)


def reflow_help(*apps: typer.Typer) -> None:
    """Join the lines of each paragraph of every command's docstring: the terminal wraps ``--help`` to its
    width, and a line broken for the source would come out broken twice."""
    for each in apps:
        for command in each.registered_commands:
            if command.callback is not None and command.callback.__doc__:
                paragraphs = inspect.cleandoc(command.callback.__doc__).split("\n\n")
                command.callback.__doc__ = "\n\n".join(" ".join(p.split()) for p in paragraphs)
