"""Mail that comes back: mailboxes, bounce reports, mailed unsubscribe requests."""
