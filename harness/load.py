"""The harness's one open-loop load generator: post notes to the API on a fixed
schedule, whatever the response times, and record a Jepsen-style history.

Scenario runs (:mod:`harness.run`) and the capacity sweep
(:mod:`harness.commands.capacity`) both post through :func:`run_load`.
``loadtests/_pacer.py`` paces Locust's gevent users instead (Poisson arrivals per user,
inside Locust's own scheduler), which this thread-pool generator cannot drive.

Every request is an ``invoke`` followed by ``ok`` (201/202: the note was accepted),
``fail`` (a definite refusal: 4xx/503) or ``info`` (indeterminate: a timeout or a
dropped connection, the note may or may not exist).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

WORDS = [
    "pipeline",
    "queue",
    "worker",
    "redis",
    "postgres",
    "ledger",
    "retry",
    "lease",
    "timeout",
    "trace",
    "span",
    "note",
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
]


@dataclass(frozen=True)
class LoadSpec:
    """``notes`` posts at ``rate`` per second (open model) with at most ``concurrency`` in flight.

    ``special`` maps a content suffix (e.g. a chaos directive) to its probability;
    ``every`` maps a suffix to a period ``n``: notes ``n/2, 3n/2, ...`` get it (spread
    over the load, none in its last half period).
    """

    notes: int = 200
    rate: float = 50.0
    concurrency: int = 8
    special: dict[str, float] = field(default_factory=dict)
    every: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    timeout: float = 10.0


@dataclass
class ClientHistory:
    ops: list[dict[str, Any]] = field(default_factory=list)
    accepted: dict[int, datetime] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: dict[str, Any]) -> None:
        with self.lock:
            self.ops.append(op)
            if op["type"] == "ok" and op.get("note_id") is not None:
                self.accepted[int(op["note_id"])] = datetime.fromisoformat(op["time"])

    @property
    def counts(self) -> dict[str, int]:
        with self.lock:
            result: dict[str, int] = {}
            for op in self.ops:
                if op["type"] != "invoke":
                    result[op["type"]] = result.get(op["type"], 0) + 1
            return result


def make_content(
    rng: random.Random,
    index: int,
    special: dict[str, float],
    every: dict[str, int] | None = None,
) -> str:
    words = rng.randint(8, 120)
    body = " ".join(rng.choice(WORDS) for _ in range(words))
    extras = [
        f"#{rng.choice(WORDS)}",
        f"see https://example.org/{index}",
        f"on 2026-11-{rng.randint(1, 28):02d}",
    ]
    content = f"Note {index}: {body}. {rng.choice(extras)}"
    for suffix, probability in special.items():
        if rng.random() < probability:
            content += f" {suffix}"
    for suffix, period in (every or {}).items():
        if period > 0 and index % period == period // 2:
            content += f" {suffix}"
    return content


def sized_content(rng: random.Random, index: int) -> str:
    """A note of a realistic size: mostly short, some paragraphs, a few long notes."""
    words = rng.choice([rng.randint(5, 40)] * 11 + [rng.randint(60, 250)] * 7 + [1000] * 2)
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    if rng.random() < 0.3:
        text += f" https://example.org/{rng.randrange(1000)} #capacity 2025-03-0{rng.randint(1, 9)}"
    return text


def note_body(rng: random.Random, index: int = 0) -> dict[str, Any]:
    """A ``POST /notes`` body with :func:`sized_content`."""
    return {"content": sized_content(rng, index), "metadata": {"index": index}}


def run_load(
    api_url: str,
    spec: LoadSpec,
    history: ClientHistory,
    *,
    stop: threading.Event | None = None,
    content: Callable[[random.Random, int], str] | None = None,
) -> float:
    """Post ``spec.notes`` notes at a fixed arrival rate; blocks until all posts are answered.

    Returns the worst dispatch lag (s): how late the dispatcher sent a post behind its
    schedule (a large lag means this client, not the API, limited the rate)."""
    rng = random.Random(spec.seed)
    stop = stop or threading.Event()
    interval = 1.0 / spec.rate if spec.rate > 0 else 0.0
    start = time.monotonic()
    worst_lag = 0.0
    with (
        httpx.Client(base_url=api_url, timeout=spec.timeout) as client,
        ThreadPoolExecutor(max_workers=spec.concurrency, thread_name_prefix="load") as pool,
    ):
        for index in range(spec.notes):
            if stop.is_set():
                break
            due = start + index * interval
            delay = due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            worst_lag = max(worst_lag, -delay)
            text = (
                content(rng, index)
                if content
                else make_content(rng, index, spec.special, spec.every)
            )
            pool.submit(_post, client, text, index, history)
    return worst_lag


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _post(client: httpx.Client, content: str, index: int, history: ClientHistory) -> None:
    history.record({"type": "invoke", "f": "post", "index": index, "note_id": None, "time": _now()})
    try:
        response = client.post("/notes", json={"content": content, "metadata": {"index": index}})
    except httpx.TimeoutException as exc:
        history.record(_op("info", index, None, None, f"timeout: {exc}"))
        return
    except httpx.HTTPError as exc:
        history.record(_op("info", index, None, None, f"{type(exc).__name__}: {exc}"))
        return
    if response.status_code in (201, 202):
        history.record(_op("ok", index, int(response.json()["id"]), response.status_code, None))
    else:
        history.record(_op("fail", index, None, response.status_code, response.text[:300]))


def _op(
    kind: str, index: int, note_id: int | None, status: int | None, error: str | None
) -> dict[str, Any]:
    return {
        "type": kind,
        "f": "post",
        "index": index,
        "note_id": note_id,
        "status_code": status,
        "error": error,
        "time": _now(),
    }
