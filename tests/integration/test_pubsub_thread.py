"""RQ's command channel thread, on a real Redis: a warm shutdown does not wait on it."""

from __future__ import annotations

import threading

from harness.wait import wait_until
from notepipe.queue.worker import build_worker
from notepipe.settings import Settings


def test_the_command_channel_thread_stops_promptly_after_it_read_the_unsubscribe(
    pipeline_settings: Settings,
) -> None:
    worker = build_worker(pipeline_settings, name="notepipe.test-host.4242")
    worker.subscribe()
    pubsub, thread = worker.pubsub, worker.pubsub_thread
    try:
        wait_until(lambda: pubsub.subscribed, 5, describe="the worker's subscription")
        # RQ's teardown sends UNSUBSCRIBE, then stops the thread. Here the thread reads the
        # reply first, as it did in CI when the main thread was descheduled in between: it
        # then waits for a new subscription, for RQ's 60 s without the mend.
        pubsub.unsubscribe()
        wait_until(lambda: not pubsub.subscribed, 5, describe="the thread to read the reply")
        # redis-py 8.2's stop() joins the thread (8.1's only asks it to stop): from a helper
        # thread, so that a long join shows as the thread still alive at the deadline.
        threading.Thread(target=thread.stop, daemon=True).start()
        # A fixed deadline, far below RQ's 60 s and far above PUBSUB_WAIT_S.
        wait_until(
            lambda: not thread.is_alive(), 5, describe="the command channel's thread to stop"
        )
    finally:
        thread.stop()
        pubsub.close()
        worker.connection.close()


def test_commands_still_reach_the_worker(pipeline_settings: Settings) -> None:
    worker = build_worker(pipeline_settings, name="notepipe.test-host.4243")
    handled: list[dict[str, object]] = []
    worker.handle_payload = handled.append  # what RQ's command handler receives
    worker.subscribe()
    try:
        wait_until(lambda: worker.pubsub.subscribed, 5, describe="the worker's subscription")
        worker.connection.publish(worker.pubsub_channel_name, '{"command": "shutdown"}')
        wait_until(lambda: bool(handled), 5, describe="the command to arrive")
        assert handled[0]["data"] == b'{"command": "shutdown"}'
    finally:
        thread = worker.pubsub_thread
        worker.unsubscribe()  # RQ's own teardown: UNSUBSCRIBE, stop, join (1 s), close
        wait_until(lambda: not thread.is_alive(), 5, describe="the thread to end")
        worker.connection.close()
