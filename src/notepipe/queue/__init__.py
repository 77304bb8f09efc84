"""RQ integration: enqueueing notes, the job, the lease heartbeat and the worker."""
