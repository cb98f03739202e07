"""Sources -> validated ``PaperIn`` records -> Paper and PaperMetrics rows.

Each source splits network from parsing: ``fetch_*`` take an ``httpx.Client``
and return raw bytes; ``parse_*`` are pure and return a ``ParseResult`` that
lists what was skipped and why; ``store_papers`` writes to the database.
"""

from pipeline.ingest.arxiv import fetch_categories, fetch_category, parse_feed, parse_feeds
from pipeline.ingest.files import day_from_name, fetched_at_from_name, parse_file, read_file, sample_files
from pipeline.ingest.hf import fetch_day, parse_day
from pipeline.ingest.http import get_with_retries
from pipeline.ingest.store import StoreReport, store_papers

__all__ = [
    "StoreReport",
    "day_from_name",
    "fetch_categories",
    "fetch_category",
    "fetch_day",
    "fetched_at_from_name",
    "get_with_retries",
    "parse_day",
    "parse_feed",
    "parse_feeds",
    "parse_file",
    "read_file",
    "sample_files",
    "store_papers",
]
