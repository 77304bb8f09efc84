"""The signals a notepipe process answers, besides its shutdown ones (SIGTERM, SIGINT)."""

from __future__ import annotations

import signal

#: Every thread's Python stack to the process's stderr (its log); the process goes on.
#: What an operator (or the harness, before it kills a process that would not stop) sends
#: to see what the process is doing. Forked work-horses and the span relay inherit it.
STACK_DUMP_SIGNAL = signal.SIGUSR1

#: The line faulthandler's dump of the thread that took the signal begins with.
STACK_DUMP_MARKER = "Current thread 0x"
