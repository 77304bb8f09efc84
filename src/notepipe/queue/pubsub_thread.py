"""RQ's command channel, listened to by a thread that stops promptly.

An RQ worker subscribes to ``rq:pubsub:<name>`` (``send_shutdown_command`` and the
like) and reads it on a redis-py ``PubSubWorkerThread`` that waits up to
``sleep_time`` for each message; RQ 2.12 passes 60 s. At a warm shutdown RQ sends
UNSUBSCRIBE, then stops the thread. If the thread reads the UNSUBSCRIBE reply before
it is told to stop (the main thread descheduled in between, as on a loaded machine), it
loops once more, finds the pubsub unsubscribed, and waits on ``subscribed_event`` for
the whole ``sleep_time``. Since redis-py 8.2, ``PubSubWorkerThread.stop()`` joins the
thread without a timeout, so the worker's warm shutdown hung for up to 60 s after
"unsubscribing from channel" (CI: killed after 23 s, its stack dump ending in
``PubSubWorkerThread.stop`` → ``Thread.join``). With redis-py 8.1, RQ's own one-second
join timed out instead, and the thread and the main thread then closed the pubsub at
once (a race that can raise ``AttributeError``).

:func:`prompt_pubsub_stop` makes the thread wait at most :data:`PUBSUB_WAIT_S` per
message: commands still arrive at once (a message ends the wait), and a stop takes at
most that long, well inside RQ's one-second join, with either redis-py."""

from __future__ import annotations

from typing import Any

#: How long the command channel's thread waits for a message before it looks at its
#: stop flag again: the most a warm shutdown waits for it. Two wake-ups a second cost
#: the worker no Redis traffic (the wait is a ``poll`` on the idle socket).
PUBSUB_WAIT_S = 0.5


def prompt_pubsub_stop(worker_class: type[Any]) -> type[Any]:
    """``worker_class`` whose command channel thread waits :data:`PUBSUB_WAIT_S` per
    message instead of RQ's 60 s; the subscription is otherwise RQ's own."""

    def subscribe(self: Any) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_WAIT_S,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )

    return type(
        worker_class.__name__,
        (worker_class,),
        {"subscribe": subscribe, "__module__": __name__, "__doc__": worker_class.__doc__},
    )
