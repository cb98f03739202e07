"""Rendering an issue once and encoding it as a message with per-subscriber slots."""
