"""svqm: an accreditation workflow engine for the Social Value Quality Mark and schemes like it."""

__version__ = "0.1.0"
