"""``notepipe worker``: real RQ workers on the queue (fork per job by default)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import socket
import threading
from datetime import datetime
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from rq.serializers import JSONSerializer
from rq.utils import import_attribute

from notepipe.contracts import rq as rq_contract
from notepipe.queue.connection import redis_connection
from notepipe.queue.lent_connection import install_lender, lending, uninstall_lender
from notepipe.queue.pubsub_thread import prompt_pubsub_stop
from notepipe.queue.runtime import install_runtime
from notepipe.redact import redact_text
from notepipe.settings import Settings
from notepipe.store.db import connect
from notepipe.telemetry import start_horse_relay

log = logging.getLogger(__name__)

MAX_RECONNECT_DELAY_S = 5.0
JOB_MODULE = "notepipe.queue.job"


def worker_name(incarnation: int = 0, *, host: str | None = None) -> str:
    """This process's RQ worker name (:func:`notepipe.contracts.rq.worker_name`)."""
    return rq_contract.worker_name(os.getpid(), incarnation=incarnation, host=host)


def build_worker(settings: Settings, *, name: str | None = None) -> Any:
    """An RQ worker of ``settings.worker_class`` on ``settings.queue_name`` (JSON serializer)."""
    configured = import_attribute(settings.worker_class)
    if not isinstance(configured, type):
        raise TypeError(f"NOTEPIPE_WORKER_CLASS={settings.worker_class!r} is not a class")
    # The configured class, preparing the connection lent to each horse before its fork,
    # with a command channel thread that lets a warm shutdown end promptly.
    worker_class = prompt_pubsub_stop(lending(configured))
    # Longer than RQ's blocking dequeue (worker_ttl - 15 s), so a black-holed
    # connection errors out (and RQ reconnects) instead of hanging forever.
    connection = redis_connection(settings, socket_timeout=settings.worker_ttl + 15)
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
    """Load the stages once (horses inherit them), then work with RQ's scheduler on.

    With telemetry on, horses hand their spans to this process, which exports them
    on one long-lived connection (see :func:`notepipe.telemetry.start_horse_relay`)."""
    install_runtime(settings)
    # Import the job module once here: every forked work-horse inherits it instead of
    # importing it afresh per job (~7 ms each).
    importlib.import_module(JOB_MODULE)
    # RQ parses its timestamps with datetime.strptime, which imports _strptime and compiles
    # its regexes on first use: do it here, not once in every horse.
    datetime.strptime("2000-01-01T00:00:00.000000Z", "%Y-%m-%dT%H:%M:%S.%fZ")
    start_horse_relay()
    install_lender(settings)  # one ledger connection, lent to each job in turn
    # Everything loaded so far lives as long as the worker: move it out of the collector's
    # reach, so a collection in a forked horse does not touch (and copy-on-write) every
    # page of it; measured at ~65 ms per full collection in a horse without this.
    gc.collect()
    gc.freeze()
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
    incarnation = 0
    delay = 0.5
    host = socket.gethostname()  # once: a renamed machine does not rename this worker
    try:
        while True:
            name = worker_name(incarnation, host=host)
            worker: Any = None
            try:
                worker = build_worker(settings, name=name)
                log.info(
                    "worker %s on queue %s (%s)", name, settings.queue_name, settings.worker_class
                )
                return bool(
                    worker.work(
                        burst=burst,
                        with_scheduler=True,
                        max_jobs=max_jobs,
                        logging_level=logging_level,
                    )
                )
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # RQ's loop gives up on a Redis outage; the worker process does not.
                incarnation += 1
                log.warning(
                    "worker %s lost Redis (%s); starting again in %.1fs",
                    name,
                    redact_text(str(exc)),
                    delay,
                )
                if worker is not None:
                    with contextlib.suppress(RedisError):
                        worker.register_death()
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, MAX_RECONNECT_DELAY_S)
    finally:
        stop.set()
        uninstall_lender()
        if reconciler is not None:
            reconciler.join(timeout=settings.reconcile_interval + 5)
