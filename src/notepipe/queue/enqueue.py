"""``RQNoteQueue``: puts one job per note attempt on the ``note_enrichment`` queue."""

from __future__ import annotations

import math
from collections.abc import Mapping

from opentelemetry import trace
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from notepipe.contracts import rq as rq_contract
from notepipe.contracts import spans
from notepipe.errors import EnqueueFailed
from notepipe.redact import redact_text
from notepipe.settings import Settings

JOB_FUNC = "notepipe.queue.job.process_note_job"

tracer = trace.get_tracer("notepipe.queue")


class RQNoteQueue:
    """Enqueues note jobs with the JSON serializer (no pickle on the wire).

    The job id is derived from the note id and the number of attempts already
    made, so enqueueing the same note twice for the same attempt is a no-op.
    """

    def __init__(self, settings: Settings, connection: Redis[bytes]) -> None:
        self.settings = settings
        self.connection = connection
        self.queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)

    def retry_for(self, attempts_made: int) -> Retry | None:
        """RQ retries left for a job started after ``attempts_made`` attempts."""
        remaining = self.settings.retry_max - attempts_made
        if remaining < 1:
            return None
        # RQ schedules at int(now) + interval: whole seconds, truncated. One extra
        # second keeps every retry gap at or above the configured interval.
        intervals = [
            math.ceil(self.settings.retry_interval(attempts_made + n + 1)) + 1
            for n in range(remaining)
        ]
        # A retry goes to the front: the note has waited its turn once already.
        return Retry(max=remaining, interval=intervals, enqueue_at_front=True)

    def enqueue_note(
        self,
        note_id: int,
        *,
        attempts_made: int = 0,
        trace_context: Mapping[str, str] | None = None,
        force: bool = False,
        at_front: bool | None = None,
    ) -> str:
        """Enqueue the job for ``note_id``; return its job id. Raise :class:`EnqueueFailed`.

        A job with the same id that is still queued/scheduled/started is left alone,
        unless ``force`` (the reconciler decided that job is dead). Retries, and
        notes whose job was lost (``at_front``), go to the front of the queue: they
        have waited their turn once already.
        """
        job_id = rq_contract.job_id(note_id, attempts_made)
        with tracer.start_as_current_span(
            spans.ENQUEUE_SPAN,
            kind=trace.SpanKind.PRODUCER,
            attributes={
                spans.NOTE_ID: note_id,
                spans.NOTE_ATTEMPT: attempts_made,
                spans.RQ_JOB_ID: job_id,
            },
        ) as span:
            meta: dict[str, object] = {"note_id": note_id, "attempts_made": attempts_made}
            meta.update(dict(trace_context or {}))
            try:
                if not force and self._is_live(job_id):
                    span.set_attribute(spans.RQ_ENQUEUE_DUPLICATE, True)
                    return job_id
                self.queue.enqueue(
                    JOB_FUNC,
                    note_id,
                    job_id=job_id,
                    job_timeout=self.settings.job_timeout,
                    result_ttl=self.settings.result_ttl,
                    failure_ttl=self.settings.failure_ttl,
                    retry=self.retry_for(attempts_made),
                    meta=meta,
                    description=f"enrich note {note_id}",
                    at_front=attempts_made > 0 if at_front is None else at_front,
                )
            except RedisError as exc:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, "enqueue failed")
                raise EnqueueFailed(
                    f"could not enqueue note {note_id} on queue {self.settings.queue_name!r}: "
                    f"{redact_text(str(exc))}; the note stays in the ledger and the reconciler "
                    "will enqueue it once Redis is reachable"
                ) from exc
        return job_id

    def _is_live(self, job_id: str) -> bool:
        status = self.connection.hget(Job.key_for(job_id), "status")
        return status in (b"queued", b"scheduled", b"deferred", b"started")
