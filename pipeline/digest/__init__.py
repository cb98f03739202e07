"""Ranking a day's papers and freezing them into an issue."""
