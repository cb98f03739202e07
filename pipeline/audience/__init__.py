"""Subscribers: operators' actions, a person's own, tokens, suppression, bounce counts."""
