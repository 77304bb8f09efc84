"""The toxic registry: type name → class, and the wrapper stored per proxy."""

from __future__ import annotations

from harness.proxy.toxics.base import Stub, Toxic, pass_through
from harness.proxy.toxics.closing import (
    LimitDataToxic,
    ResetPeerToxic,
    SlowCloseToxic,
    TimeoutToxic,
)
from harness.proxy.toxics.timing import BandwidthToxic, LatencyToxic, NoopToxic, SlicerToxic
from harness.proxy.toxics.wrapper import ToxicWrapper

REGISTRY: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (
        NoopToxic,
        LatencyToxic,
        BandwidthToxic,
        SlowCloseToxic,
        TimeoutToxic,
        ResetPeerToxic,
        SlicerToxic,
        LimitDataToxic,
    )
}

__all__ = ["REGISTRY", "ResetPeerToxic", "Stub", "Toxic", "ToxicWrapper", "pass_through"]
