"""Patch Pilot: reverse sound design."""

__version__ = "0.1.0"
