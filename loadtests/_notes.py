"""Realistic note bodies: a seeded mix of tweets, paragraphs and multi-KB notes.

The leading underscore keeps Locust from importing this file as a locustfile
(``locust -f loadtests/`` loads every ``*.py`` not starting with ``_``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

WORDS = [
    "pipeline",
    "queue",
    "worker",
    "ledger",
    "retry",
    "lease",
    "timeout",
    "trace",
    "span",
    "release",
    "deploy",
    "meeting",
    "budget",
    "travel",
    "idea",
    "draft",
    "review",
    "summary",
    "customer",
    "invoice",
    "roadmap",
    "incident",
    "backlog",
    "coffee",
    "lunch",
    "weekend",
    "garden",
    "recipe",
    "book",
    "chapter",
    "train",
    "flight",
    "hotel",
    "museum",
    "concert",
    "quarterly",
    "forecast",
    "hiring",
    "onboarding",
    "migration",
    "database",
    "latency",
    "throughput",
    "capacity",
]
HASHTAGS = ("#ops", "#todo", "#idea", "#travel", "#reading", "#release", "#q3", "#health")
DOMAINS = ("example.org", "docs.example.com", "blog.example.net", "wiki.example.io")
MENTIONS = ("@ana", "@bo", "@chen", "@dara", "@eli")


@dataclass(frozen=True)
class SizeClass:
    """One kind of note: ``weight`` is its share of posts, sizes are in words."""

    name: str
    weight: float
    min_words: int
    max_words: int


# Roughly what a note-taking app sees: mostly short, some paragraphs, a few long notes.
SIZE_MIX: tuple[SizeClass, ...] = (
    SizeClass("tweet", 0.55, 5, 40),
    SizeClass("paragraph", 0.35, 60, 250),
    SizeClass("long", 0.10, 600, 1800),  # ~4-12 KB
)
MAX_CONTENT_BYTES = 64 * 1024


def _sentence(rng: random.Random, words: int) -> str:
    picked = [rng.choice(WORDS) for _ in range(words)]
    picked[0] = picked[0].capitalize()
    return " ".join(picked) + "."


def _extras(rng: random.Random) -> list[str]:
    """URLs, dates, hashtags and mentions, so the entity stage has work to do."""
    extras: list[str] = []
    if rng.random() < 0.3:
        extras.append(f"https://{rng.choice(DOMAINS)}/{rng.choice(WORDS)}/{rng.randrange(1000)}")
    if rng.random() < 0.25:
        day = date(2024, 1, 1) + timedelta(days=rng.randrange(730))
        extras.append(day.isoformat() if rng.random() < 0.5 else day.strftime("%d %B %Y"))
    if rng.random() < 0.4:
        extras.extend(rng.sample(HASHTAGS, k=rng.randint(1, 3)))
    if rng.random() < 0.1:
        extras.append(rng.choice(MENTIONS))
    if rng.random() < 0.05:
        extras.append(f"{rng.choice(MENTIONS)[1:]}@example.com")
    return extras


def pick_size(rng: random.Random) -> SizeClass:
    return rng.choices(SIZE_MIX, weights=[s.weight for s in SIZE_MIX])[0]


def make_note(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A ``POST /notes`` body and its size class name."""
    size = pick_size(rng)
    remaining = rng.randint(size.min_words, size.max_words)
    sentences: list[str] = []
    while remaining > 0:
        n = min(remaining, rng.randint(6, 18))
        sentences.append(_sentence(rng, n))
        remaining -= n
    extras = _extras(rng)
    for extra in extras:
        sentences.insert(rng.randrange(len(sentences) + 1), extra)
    content = " ".join(sentences).encode()[:MAX_CONTENT_BYTES].decode(errors="ignore")
    metadata = {"source": "locust", "size": size.name, "tags": [e for e in extras if e[0] == "#"]}
    return size.name, {"content": content, "metadata": metadata}
