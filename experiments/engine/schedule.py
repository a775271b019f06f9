"""The checkpoint schedule every chapter uses, so that "step" means the same thing in every figure."""
from __future__ import annotations

import numpy as np


def checkpoint_steps(steps: int, n: int) -> list[int]:
    """Step 0 and n - 1 roughly geometric steps up to the end: early training moves the terms most."""
    geo = np.unique(np.round(np.geomspace(1, steps, n - 1)).astype(int))
    return [0] + [int(s) for s in geo]
