"""What every benchmark prints the same way (the machine it ran on, nearest-rank percentiles), and a free port."""

from __future__ import annotations

import math
import os
import platform
import socket
import time
from collections.abc import Awaitable, Callable


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: p99 of 500 samples is the 495th smallest."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def header() -> str:
    return (
        f"machine: {platform.platform()} ({platform.machine()}), {os.cpu_count() or 0} CPUs, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )


def free_port() -> int:
    """A loopback port nothing listens on now, for a server started in another process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    """Milliseconds per call, `count` calls one after another."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples
