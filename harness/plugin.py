"""The notepipe pytest plugin (entry point ``pytest11: notepipe``)."""

from __future__ import annotations
