"""What every benchmark prints the same way: the machine it ran on, and nearest-rank percentiles."""

from __future__ import annotations

import math
import os
import platform


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: p99 of 500 samples is the 495th smallest."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def header() -> str:
    return (
        f"machine: {platform.platform()} ({platform.machine()}), {os.cpu_count() or 0} CPUs, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )
