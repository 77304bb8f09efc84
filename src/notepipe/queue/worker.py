"""``notepipe worker``: real RQ workers on the queue (fork per job by default)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from rq import Queue
from rq.serializers import JSONSerializer
from rq.utils import import_attribute

from notepipe.queue.connection import redis_connection
from notepipe.queue.runtime import install_runtime
from notepipe.settings import Settings
from notepipe.store.db import connect

log = logging.getLogger(__name__)


def worker_name() -> str:
    """``notepipe.<host>.<pid>``: unique while alive, and maps a ledger row to a process."""
    return f"notepipe.{socket.gethostname()}.{os.getpid()}"


def build_worker(settings: Settings, *, name: str | None = None) -> Any:
    """An RQ worker of ``settings.worker_class`` on ``settings.queue_name`` (JSON serializer)."""
    worker_class = import_attribute(settings.worker_class)
    connection = redis_connection(settings, socket_timeout=None)
    queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)
    return worker_class(
        [queue],
        name=name or worker_name(),
        connection=connection,
        serializer=JSONSerializer,
        maintenance_interval=settings.maintenance_interval,
        worker_ttl=settings.worker_ttl,
    )


def run_worker(
    settings: Settings,
    *,
    burst: bool = False,
    with_reconciler: bool = False,
    max_jobs: int | None = None,
    logging_level: str = "INFO",
) -> bool:
    """Load the stages once (horses inherit them), then work with RQ's scheduler on."""
    install_runtime(settings)
    stop = threading.Event()
    reconciler: threading.Thread | None = None
    if with_reconciler:
        from notepipe.reconcile import run_forever

        reconciler = threading.Thread(
            target=run_forever,
            args=(settings, lambda: connect(settings), redis_connection(settings), stop),
            name="reconciler",
            daemon=True,
        )
        reconciler.start()
    worker = build_worker(settings)
    log.info("worker %s on queue %s (%s)", worker.name, settings.queue_name, settings.worker_class)
    try:
        return bool(
            worker.work(
                burst=burst, with_scheduler=True, max_jobs=max_jobs, logging_level=logging_level
            )
        )
    finally:
        stop.set()
        if reconciler is not None:
            reconciler.join(timeout=settings.reconcile_interval + 5)
