"""Pledges, evidence files, reviews and scores."""
