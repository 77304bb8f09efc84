"""Queue, registry, worker and ledger counts, read without side effects.

RQ's ``registry.count``/``get_job_ids`` run cleanup as a side effect, so the
registries are read raw (``ZCARD``), as ``rq info`` would show them.
"""

from __future__ import annotations

from typing import Any

from redis import Redis

from notepipe.store import ledger
from notepipe.store.rows import Conn


def rq_stats(redis: Redis[bytes], queue_name: str) -> dict[str, Any]:
    keys = {
        "started": f"rq:wip:{queue_name}",
        "scheduled": f"rq:scheduled:{queue_name}",
        "failed": f"rq:failed:{queue_name}",
        "finished": f"rq:finished:{queue_name}",
        "deferred": f"rq:deferred:{queue_name}",
        "canceled": f"rq:canceled:{queue_name}",
    }
    with redis.pipeline(transaction=False) as pipe:
        pipe.llen(f"rq:queue:{queue_name}")
        pipe.llen(f"rq:queue:{queue_name}:intermediate")
        for key in keys.values():
            pipe.zcard(key)
        pipe.smembers(f"rq:workers:{queue_name}")
        results = pipe.execute()
    workers = sorted(
        (w.decode() if isinstance(w, bytes) else str(w)).removeprefix("rq:worker:")
        for w in results[-1]
    )
    return {
        "queue": queue_name,
        "queued": int(results[0]),
        "intermediate": int(results[1]),
        "registries": {name: int(n) for name, n in zip(keys, results[2:-1], strict=True)},
        "workers": workers,
        "worker_count": len(workers),
    }


def ledger_stats(conn: Conn) -> dict[str, int]:
    return ledger.count_by_status(conn)
