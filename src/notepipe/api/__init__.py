"""The HTTP API (FastAPI): accept notes, report their status, health and stats."""
