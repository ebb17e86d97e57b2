"""splitmix64's output function (csrc/mix64.hpp), on which the shuffle and the dropout masks
are built: counter-based randomness that both backends compute alike, for any thread count."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MASK64 = (1 << 64) - 1
C1 = 0x9E3779B97F4A7C15  # splitmix64's increment γ (the golden ratio in 64 bits)
C2 = 0xC2B2AE3D27D4EB4F


def mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:

    """splitmix64's output function (Steele, Lea & Flood 2014) on a uint64 array, with
    wrapping arithmetic as in C++: a bijection whose outputs look independent for consecutive
    inputs."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
