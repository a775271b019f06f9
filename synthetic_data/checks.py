"""Field checks shared by every chapter's ``DataSpec.check()``: each raises ``ValueError("field: what is wrong")``,
the form the config loader prefixes with the dotted path."""
from __future__ import annotations

import math

import numpy as np


def check_int(value, name: str, minimum: int) -> None:
    # bool subclasses int, but True is never a meaningful size
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: must be an integer (got {value!r})")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum} (got {value})")


def check_real(value, name: str, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: must be a number (got {value!r})")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name}: must be finite and >= {minimum} (got {value})")
