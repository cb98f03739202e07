"""Every public address of the site, in one place: the route shapes, and the links built from them.

The web routes declare these shapes; the mail (unsubscribe, preferences, confirm,
"view in browser") and the site's own pages build their links here, with the
token of the right purpose. A token carries a subscriber's opaque uid, never the
address (see :mod:`pipeline.audience.tokens`).
"""

from __future__ import annotations

import datetime as dt

from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import Edition

HOME = "/"
SUBSCRIBE = "/subscribe"
CONFIRM = "/confirm/{token}"
UNSUBSCRIBE = "/u/{token}"  # also the RFC 8058 one-click target in List-Unsubscribe
RESUBSCRIBE = "/u/{token}/resubscribe"
PREFERENCES = "/p/{token}"
FEEDBACK = "/f/{token}"  # the mail adds ?paper=<arXiv id>&vote=more|less
INTERESTS = PREFERENCES + "/interests"  # the preferences page's own forms
INTEREST_REMOVE = PREFERENCES + "/interests/remove"
VOTES_CLEAR = PREFERENCES + "/votes/clear"
FEED_RENEW = PREFERENCES + "/feed/renew"
READER_FEED = "/feed/{token}"  # a reader's own digests, as Atom
ARCHIVE = "/issues"
ISSUE = "/issues/{day}"
WEEKLY_ISSUE = "/issues/{day}/weekly"
ATOM_FEED = "/feed.atom"
JSON_FEED = "/feed.json"
IMAGE = "/images/{name}"  # a stored thumbnail, by the digest of its bytes: "<sha256>.jpg"
IMAGE_SUFFIX = ".jpg"


def image_path(digest: str) -> str:
    return IMAGE.format(name=f"{digest}{IMAGE_SUFFIX}")


def issue_path(day: dt.date, edition: Edition = Edition.daily) -> str:
    """Where an issue is shown on the site ("view in browser")."""
    return (WEEKLY_ISSUE if edition is Edition.weekly else ISSUE).format(day=day.isoformat())


class Links:
    """A subscriber's own links: signed once per purpose, as paths (for the site) or URLs (for mail)."""

    def __init__(self, *, base_url: str, secret_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._signers = {purpose: Signer(secret_key, purpose) for purpose in Purpose}

    def token(self, purpose: Purpose, uid: str) -> str:
        return self._signers[purpose].sign(uid)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def confirm(self, uid: str) -> str:
        return CONFIRM.format(token=self.token(Purpose.confirm, uid))

    def unsubscribe(self, uid: str) -> str:
        return UNSUBSCRIBE.format(token=self.token(Purpose.unsubscribe, uid))

    def resubscribe(self, uid: str) -> str:
        return RESUBSCRIBE.format(token=self.token(Purpose.unsubscribe, uid))

    def preferences(self, uid: str) -> str:
        return PREFERENCES.format(token=self.token(Purpose.preferences, uid))

    def feedback(self, uid: str) -> str:
        return FEEDBACK.format(token=self.token(Purpose.feedback, uid))

    def reader_feed(self, uid: str, generation: int) -> str:
        return READER_FEED.format(token=self.token(Purpose.reader_feed, f"{uid}.{generation}"))

    def issue(self, day: dt.date, edition: Edition = Edition.daily) -> str:
        return self.url(issue_path(day, edition))

    def for_pages(self, uid: str) -> dict[str, str]:
        """The paths a site page about this subscriber links to and posts to."""
        return {"unsubscribe": self.unsubscribe(uid), "resubscribe": self.resubscribe(uid),
                "preferences": self.preferences(uid)}
