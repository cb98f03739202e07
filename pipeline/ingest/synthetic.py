"""A made-up Hugging Face daily-papers history, to run the trend-score backtest on. Pure: a seed in, files out.

No public record of how papers' upvotes arrived hour by hour can be fetched, so this invents one, in the
real format: the snapshot files ``hf.parse_day`` reads like the live list, named like any saved fetch
(``hf_daily_papers_<YYYY-MM-DD>_<HHMM>Z.json``). Figures measured on it test the backtest's machinery,
not the world: they say how the scores fare on this model, which is only as right as its guesses below.
Every paper carries the organization ``SYNTHETIC_ORGANIZATION``, so nobody takes it for real papers
(``papermail backtest`` says so when it sees them).

The model, per paper (one ``random.Random(seed)``, drawn in a fixed order: the same seed, the same bytes):

    arrival     20-60 papers a day (20-30 at weekends), entering the list at various UTC hours, most in
                the morning, none after the day's last fetch
    appeal      a latent popularity, log-normal (median about 10 upvotes, a long tail into the hundreds)
    upvotes     the submitter's own at listing, then Poisson arrivals: most in a burst with a time scale of
                a few hours after listing, the rest spread over the next days; one paper in twelve is a slow
                burner whose burst comes one to three days late
    comments    about one per twenty upvotes, noisy, each some hours after an upvote
    stars       a third of the papers link a GitHub repository: stars from before the listing, then more
                arriving slowly (a gamma with a mean of two and a half days) and for longer than upvotes do
    re-listing  one paper in twenty-five appears again in a later day's list (half the time as ``<id>v2``),
                with a second, smaller burst; its counts are the paper's own, as on the site

Fetches: every ``EVERY_HOURS`` hours. The name of a snapshot file carries one date, which
``ingest.files`` reads as both the list's day and the fetch's, so a file cannot say "the list of the 3rd
as fetched on the 5th". Each file is therefore what a poller of the last few days' lists saw at that
moment: the lists of its own day and of the ``FOLLOW_DAYS`` days before, one item per paper. Ingested
day by day, a paper keeps the day it was first seen on (``ingest.store``), which is the day it was listed,
and every later fetch adds a snapshot of its engagement.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

SYNTHETIC_ORGANIZATION = "Synthetic history (papermail synthesize)"
DEFAULT_START = dt.date(2025, 1, 6)
DEFAULT_DAYS = 60
DEFAULT_SEED = 7
EVERY_HOURS = 3
FOLLOW_DAYS = 4  # a day's list is fetched on its day and the four after: a three-day horizon from the send hour
LAST_LISTING_HOUR = 21  # no paper enters after the day's last fetch, so each is first seen on its own day

_HOUR = 3600.0

_FIRST = ("Ada", "Wei", "Priya", "Lucas", "Sofia", "Kenji", "Amara", "Jonas", "Mei", "Omar", "Elena", "Ravi",
          "Hana", "Diego", "Yuki", "Noah", "Lina", "Tomas", "Aisha", "Felix", "Chen", "Zara", "Ivan", "Maya")
_LAST = ("Zhang", "Garcia", "Okafor", "Müller", "Tanaka", "Rossi", "Kim", "Novak", "Singh", "Silva", "Haddad",
         "Larsen", "Nguyen", "Kowalski", "Ito", "Dubois", "Costa", "Ahmed", "Petrov", "Wang", "Moreau", "Li")
_ADJ = ("Sparse", "Scalable", "Efficient", "Self-Supervised", "Multimodal", "Causal", "Robust", "Adaptive",
        "Hierarchical", "Training-Free", "Unified", "Latent", "Contrastive", "Autoregressive", "Lightweight")
_NOUN = ("Diffusion Transformers", "Mixture-of-Experts", "State Space Models", "Vision-Language Models",
         "Reward Models", "World Models", "Retrieval Agents", "Tokenizers", "Flow Matching", "Small Language Models",
         "Speculative Decoding", "Graph Networks", "Neural Fields", "Policy Optimization", "Attention Kernels")
_TASK = ("Long-Context Reasoning", "Video Generation", "Code Synthesis", "Robot Manipulation", "3D Reconstruction",
         "Mathematical Reasoning", "Speech Recognition", "Image Editing", "Protein Design", "Web Navigation",
         "Document Understanding", "Weather Forecasting", "Multilingual Translation", "Tool Use")
_GH_WORDS = ("lab", "ai", "research", "group", "nlp", "vision", "ml", "team")


def _hex(rng: random.Random, digits: int = 24) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # Knuth's product loop is slow for big means; the normal approximation is fine there
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class _Listing:
    day: dt.date
    at: dt.datetime
    shown_id: str  # the id as this list shows it (a re-listing may carry a version)


@dataclass(slots=True)
class _Paper:
    arxiv_id: str
    title: str
    summary: str
    authors: list[dict[str, object]]
    published_at: dt.datetime
    discussion_id: str
    submitted_by: dict[str, object]
    author_participating: bool
    repo: str | None
    stars_before: int
    listings: list[_Listing] = field(default_factory=list)
    upvote_times: list[float] = field(default_factory=list)  # POSIX seconds, sorted
    comment_times: list[float] = field(default_factory=list)
    star_times: list[float] = field(default_factory=list)

    def counts(self, at: float) -> tuple[int, int, int | None]:
        up = bisect.bisect_right(self.upvote_times, at)
        comments = bisect.bisect_right(self.comment_times, at)
        stars = None if self.repo is None else self.stars_before + bisect.bisect_right(self.star_times, at)
        return up, comments, stars


class _World:
    def __init__(self, *, start: dt.date, days: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start, self.days = start, days
        self.ids: set[str] = set()
        self.papers: list[_Paper] = []
        self.lists: dict[dt.date, list[_Paper]] = {}

    def build(self) -> None:
        for offset in range(self.days):
            day = self.start + dt.timedelta(days=offset)
            count = self.rng.randint(20, 30) if day.weekday() >= 5 else self.rng.randint(20, 60)
            self.lists.setdefault(day, [])
            for _ in range(count):
                self._new_paper(day)
        for paper in self.papers:
            paper.upvote_times.sort()
            paper.comment_times.sort()
            paper.star_times.sort()

    def _new_id(self, published: dt.datetime) -> str:
        while True:
            arxiv_id = f"{published:%y%m}.{self.rng.randint(1, 29999):05d}"
            if arxiv_id not in self.ids:
                self.ids.add(arxiv_id)
                return arxiv_id

    def _listing_time(self, day: dt.date) -> dt.datetime:
        rng = self.rng
        hours = rng.uniform(0.05, 10) if rng.random() < 0.75 else rng.uniform(10, LAST_LISTING_HOUR - 0.05)
        at = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(hours=hours)
        return at.replace(microsecond=rng.randrange(1000) * 1000)

    def _new_paper(self, day: dt.date) -> None:
        rng = self.rng
        listed = self._listing_time(day)
        back = rng.randint(1, 3) if rng.random() < 0.8 else rng.randint(20, 200)  # many listed papers are old
        published = dt.datetime.combine(day - dt.timedelta(days=back), dt.time(17), tzinfo=dt.UTC)
        adj, noun, task = rng.choice(_ADJ), rng.choice(_NOUN), rng.choice(_TASK)
        title = f"{adj} {noun} for {task}"
        summary = (f"We study {noun.lower()} for {task.lower()}. Our {adj.lower()} approach improves quality "
                   f"by {rng.randint(2, 40)}% at {rng.choice(('half', 'a third of', 'the same'))} the compute "
                   f"on {rng.randint(3, 12)} benchmarks, and we release code and models.")
        authors: list[dict[str, object]] = [
            {"_id": _hex(rng), "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", "hidden": False}
            for _ in range(rng.randint(2, 6))
        ]
        submitter = str(authors[0]["name"]) if rng.random() < 0.4 else f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        handle = submitter.lower().replace(" ", "-").replace("ü", "u")
        has_repo = rng.random() < 0.33
        repo = (f"https://github.com/{rng.choice(_LAST).lower().replace('ü', 'u')}-{rng.choice(_GH_WORDS)}/"
                f"{adj.lower()}-{noun.split()[0].lower()}-{rng.randint(1, 99)}") if has_repo else None
        paper = _Paper(
            arxiv_id=self._new_id(published),
            title=title,
            summary=summary,
            authors=authors,
            published_at=published,
            discussion_id=_hex(rng),
            submitted_by={"_id": _hex(rng), "fullname": submitter, "name": handle, "type": "user",
                          "isPro": rng.random() < 0.2},
            author_participating=rng.random() < 0.3,
            repo=repo,
            stars_before=int(rng.lognormvariate(math.log(15), 1.4)) if has_repo else 0,
        )
        paper.listings.append(_Listing(day, listed, paper.arxiv_id))
        self.papers.append(paper)
        self.lists[day].append(paper)
        self._engagement(paper, listed)

    def _engagement(self, paper: _Paper, listed: dt.datetime) -> None:
        rng = self.rng
        t0 = listed.timestamp()
        appeal = rng.lognormvariate(math.log(10), 1.2)
        burst = rng.lognormvariate(math.log(4), 0.5) * _HOUR  # the time scale of the first hours' burst
        tail = rng.lognormvariate(math.log(36), 0.4) * _HOUR  # and of the slow trickle after it
        share = rng.betavariate(6, 3)  # of the votes that come in the burst
        late = rng.uniform(18, 72) * _HOUR if rng.random() < 1 / 12 else 0.0  # a slow burner's delay
        paper.upvote_times.append(t0)  # the submitter's own
        for _ in range(_poisson(rng, appeal)):
            if rng.random() < share:
                paper.upvote_times.append(t0 + late + rng.expovariate(1 / burst))
            else:
                paper.upvote_times.append(t0 + rng.expovariate(1 / tail))
        talk = rng.lognormvariate(math.log(0.05), 0.6)
        for _ in range(_poisson(rng, appeal * talk)):
            paper.comment_times.append(rng.choice(paper.upvote_times) + rng.expovariate(1 / (5 * _HOUR)))
        if paper.repo is not None:
            for _ in range(_poisson(rng, appeal * rng.lognormvariate(math.log(1.5), 0.9))):
                paper.star_times.append(t0 + rng.gammavariate(2.0, 30 * _HOUR))
        if rng.random() < 1 / 25:
            again = listed.date() + dt.timedelta(days=rng.randint(2, 10))
            if again < self.start + dt.timedelta(days=self.days):
                at = self._listing_time(again)
                shown = f"{paper.arxiv_id}v2" if rng.random() < 0.5 else paper.arxiv_id
                paper.listings.append(_Listing(again, at, shown))
                self.lists.setdefault(again, []).append(paper)
                for _ in range(_poisson(rng, appeal * rng.uniform(0.2, 0.6))):
                    paper.upvote_times.append(at.timestamp() + rng.expovariate(1 / burst))

    def item(self, paper: _Paper, listing: _Listing, at: float) -> dict[str, object]:
        """One list item as the API sends it, with the paper's counts at ``at``."""
        up, comments, stars = paper.counts(at)
        published = _stamp(paper.published_at)
        inner: dict[str, object] = {
            "id": listing.shown_id,
            "authors": paper.authors,
            "publishedAt": published,
            "submittedOnDailyAt": _stamp(listing.at),
            "title": paper.title,
            "summary": paper.summary,
            "upvotes": up,
            "discussionId": paper.discussion_id,
        }
        if paper.repo is not None:
            inner["githubRepo"] = paper.repo
            inner["githubStars"] = stars
        inner["organization"] = {"_id": "000000000000000000000000", "name": "papermail-synthetic",
                                 "fullname": SYNTHETIC_ORGANIZATION}
        return {
            "paper": inner,
            "publishedAt": published,
            "title": paper.title,
            "summary": paper.summary,
            "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{paper.arxiv_id}.png",
            "numComments": comments,
            "submittedBy": paper.submitted_by,
            "isAuthorParticipating": paper.author_participating,
        }

    def fetch(self, moment: dt.datetime) -> list[dict[str, object]]:
        """What a poller of the last ``FOLLOW_DAYS + 1`` days' lists saw at ``moment``: one item per paper, in the
        list it entered most recently, oldest listing first."""
        at = moment.timestamp()
        newest: dict[str, tuple[_Listing, _Paper]] = {}
        for back in range(FOLLOW_DAYS, -1, -1):
            for paper in self.lists.get(moment.date() - dt.timedelta(days=back), []):
                for listing in paper.listings:
                    if listing.day == moment.date() - dt.timedelta(days=back) and listing.at.timestamp() <= at:
                        newest[paper.arxiv_id] = (listing, paper)
        shown = sorted(newest.values(), key=lambda lp: (lp[0].at, lp[1].arxiv_id))
        return [self.item(paper, listing, at) for listing, paper in shown]


def snapshot_name(moment: dt.datetime) -> str:
    return f"hf_daily_papers_{moment:%Y-%m-%d}_{moment:%H%M}Z.json"


def snapshots(*, days: int = DEFAULT_DAYS, seed: int = DEFAULT_SEED,
              start: dt.date = DEFAULT_START) -> Iterator[tuple[str, bytes]]:
    """The history's snapshot files, oldest fetch first, as (file name, JSON bytes); deterministic for a seed.

    ``days`` days of listings from ``start``; fetches go on ``FOLLOW_DAYS`` days past the last one, so every
    listing day is followed as long as the first.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    world = _World(start=start, days=days, seed=seed)
    world.build()
    moment = dt.datetime.combine(start, dt.time(0), tzinfo=dt.UTC)
    end = dt.datetime.combine(start + dt.timedelta(days=days + FOLLOW_DAYS), dt.time(0), tzinfo=dt.UTC)
    while moment < end:
        items = world.fetch(moment)
        if items:
            yield snapshot_name(moment), json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()
        moment += dt.timedelta(hours=EVERY_HOURS)
