"""Per-subscriber placeholders.

An issue is rendered and MIME-encoded once; these markers stand where each
subscriber's own values go and are substituted as bytes at send time. They are
plain lowercase ASCII with hyphens so that HTML escaping, MJML, premailer,
quoted-printable encoding and header folding all leave them intact.
"""

UNSUBSCRIBE_URL = "pm-slot-unsubscribe-url"
PREFERENCES_URL = "pm-slot-preferences-url"
RECIPIENT = "pm-slot-recipient@pm-slot.invalid"
MESSAGE_ID = "pm-slot-message-id@pm-slot.invalid"
UNSUBSCRIBE_MAILTO = "pm-slot-unsubscribe-mailto"

FEEDBACK_URL = "pm-slot-feedback-url"  # each card's "more / less like this" links start with it

BODY_SLOTS = (UNSUBSCRIBE_URL, PREFERENCES_URL, FEEDBACK_URL)
REQUIRED_SLOTS = (UNSUBSCRIBE_URL, PREFERENCES_URL)  # in every issue; the feedback one only with papers
