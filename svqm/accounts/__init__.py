"""Organisations and the people who act for them."""
