"""Service faults: Redis or PostgreSQL restarted (killed or stopped) or paused."""

from __future__ import annotations

from harness.errors import HarnessConfigError
from harness.faults.base import Fault

SERVICE_TARGETS = ("redis", "postgres")


class ServiceFault(Fault):
    """Base of the faults whose target is a service (or the network path to it)."""

    @classmethod
    def check_target(cls, target: str) -> None:
        if target not in SERVICE_TARGETS:
            raise HarnessConfigError(
                f"fault {cls.kind} needs target 'redis' or 'postgres', not {target!r}"
            )


class RestartService(ServiceFault):
    """Stop (``mode``: ``kill`` or ``stop``) Redis or PostgreSQL; heal starts it again.
    ``keep_data`` false wipes it (a Redis without persistence loses everything anyway)."""

    kind = "restart_service"

    def inject(self) -> None:
        service = self.stack.service(self.spec.target)
        if self.spec.params.get("mode", "kill") == "kill":
            service.kill()
        else:
            service.stop()

    def heal(self) -> None:
        service = self.stack.service(self.spec.target)
        service.restart(keep_data=bool(self.spec.params.get("keep_data", True)))


class PauseService(ServiceFault):
    """SIGSTOP the service (it accepts connections but answers nothing); heal resumes it."""

    kind = "pause_service"

    def inject(self) -> None:
        self.stack.service(self.spec.target).pause()

    def heal(self) -> None:
        self.stack.service(self.spec.target).resume()
