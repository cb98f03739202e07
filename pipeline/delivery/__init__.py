"""Sending an issue: the ledger, the send loop, messengers, pacing, DKIM, resends."""
