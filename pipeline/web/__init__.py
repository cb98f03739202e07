"""The site: subscribe, confirm, unsubscribe, preferences, the archive and a health check.

Pages are rendered on the server and work without JavaScript. The web layer
only maps a verified token to a uid, calls :mod:`pipeline.audience.subscriptions` and
renders a page; it never changes subscription state itself.
"""

from pipeline.web.app import create_app

__all__ = ["create_app"]
