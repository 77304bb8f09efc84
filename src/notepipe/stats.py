"""Queue, registry, worker and ledger counts, read without side effects.

RQ's ``registry.count``/``get_job_ids`` run cleanup as a side effect, so the
registries are read raw (``ZCARD``), as ``rq info`` would show them.
"""

from __future__ import annotations

from typing import Any

from redis import Redis

from notepipe.contracts import rq as keys
from notepipe.store import ledger
from notepipe.store.rows import Conn


def rq_stats(redis: Redis[bytes], queue_name: str) -> dict[str, Any]:
    registries = list(keys.REGISTRIES)
    with redis.pipeline(transaction=False) as pipe:
        pipe.llen(keys.queue_key(queue_name))
        pipe.llen(keys.intermediate_key(queue_name))
        for registry in registries:
            pipe.zcard(keys.registry_key(registry, queue_name))
        pipe.smembers(keys.workers_key(queue_name))
        results = pipe.execute()
    workers = sorted(
        (w.decode() if isinstance(w, bytes) else str(w)).removeprefix(keys.WORKER_PREFIX)
        for w in results[-1]
    )
    return {
        "queue": queue_name,
        "queued": int(results[0]),
        "intermediate": int(results[1]),
        "registries": {name: int(n) for name, n in zip(registries, results[2:-1], strict=True)},
        "workers": workers,
        "worker_count": len(workers),
    }


def ledger_stats(conn: Conn) -> dict[str, int]:
    return ledger.count_by_status(conn)
