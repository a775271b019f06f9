"""User generators ("plug-ins") that stand in for a chapter's built-in distribution in ``sslt check``.

A plug-in is a Python class named ``"package.module:Name"`` and built with keyword arguments. Each chapter
states its protocol (``PLUGIN_PROTOCOL`` in ``synthetic_data/<chapter>.py``, documented in docs/plugins.md):
the methods that sample, and the exact quantities its theorems need. A quantity the class cannot compute is
declared unknown by returning None; the suite then estimates it from the class's own samples, with a standard
error, and says so. A data spec names the plug-in by three fields that are left out of its hash while empty
(``experiments.engine.config.to_json``), so adding them changed no existing cell id:

- ``generator``: "package.module:Name";
- ``generator_args``: the keyword arguments as canonical JSON;
- ``generator_digest``: a hash of the plug-in's source file, so that an edited plug-in is a new distribution.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json

import numpy as np

OMIT = {"omit_default": True}
N_SE = 4.0  # a declared quantity further than this many standard errors from its estimate stops the check


class PluginError(ValueError):
    """A plug-in that cannot be used: the message names the plug-in, the method or quantity, and the problem."""


def generator_fields():
    """The three data-spec fields every chapter adds (see the module docstring)."""
    return (dataclasses.field(default="", metadata=OMIT), dataclasses.field(default="", metadata=OMIT),
            dataclasses.field(default="", metadata=OMIT))


def load_class(path: str) -> type:
    if not isinstance(path, str) or path.count(":") != 1:
        raise PluginError(f"generator: must look like 'package.module:ClassName', got {path!r}")
    module_name, name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # any failure to import user code is the user's to see, in one line
        raise PluginError(f"generator: cannot import module {module_name!r}: {type(err).__name__}: {err}") from None
    cls = getattr(module, name, None)
    if cls is None or not inspect.isclass(cls):
        raise PluginError(f"generator: module {module_name!r} has no class {name!r}")
    return cls


def source_digest(path: str) -> str:
    cls = load_class(path)
    try:
        source = inspect.getsource(inspect.getmodule(cls))
    except (OSError, TypeError):
        return "unknown"
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def instantiate(generator: str, generator_args: str, protocol: dict[str, str]):
    """Build the plug-in and check it has every method/attribute of ``protocol`` (name -> what it is)."""
    cls = load_class(generator)
    try:
        args = json.loads(generator_args) if generator_args else {}
    except json.JSONDecodeError as err:
        raise PluginError(f"generator_args: not valid JSON ({err})") from None
    try:
        obj = cls(**args)
    except Exception as err:
        raise PluginError(f"generator: {generator}({', '.join(args)}) failed: {type(err).__name__}: {err}") from None
    missing = [name for name in protocol if not hasattr(obj, name)]
    if missing:
        raise PluginError(f"generator: {generator} lacks {', '.join(missing)} of the protocol "
                          f"({'; '.join(f'{m}: {protocol[m]}' for m in missing)}); see docs/plugins.md")
    return obj


def as_array(name: str, value, shape: tuple, kind: str = "f") -> np.ndarray:
    """``value`` as an array of ``shape`` (None = any size) and dtype kind ('f' float, 'i' integer), finite."""
    arr = np.asarray(value)
    if arr.dtype.kind not in (kind + ("iu" if kind == "i" else "")):
        if not (kind == "f" and arr.dtype.kind in "iu"):
            raise PluginError(f"{name}: expected {'floats' if kind == 'f' else 'integers'}, got dtype {arr.dtype}")
    if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape)):
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise PluginError(f"{name}: expected shape {want}, got {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise PluginError(f"{name}: contains NaN or infinite values")
    return arr


def probability_vector(name: str, value, n: int) -> np.ndarray:
    p = as_array(name, value, (n,)).astype(np.float64)
    if np.any(p < 0) or abs(float(p.sum()) - 1.0) > 1e-9:
        raise PluginError(f"{name}: must be >= 0 and sum to 1 (sum {float(p.sum())!r})")
    return p / p.sum()


@dataclasses.dataclass(frozen=True)
class Agreement:
    """A declared exact quantity set against the suite's estimate from the plug-in's own samples."""
    quantity: str
    declared: float
    estimate: float
    se: float
    detail: str = ""

    @property
    def gap_se(self) -> float:
        return abs(self.declared - self.estimate) / self.se if self.se > 0 else (
            0.0 if self.declared == self.estimate else float("inf"))

    @property
    def ok(self) -> bool:
        return self.gap_se <= N_SE

    def describe(self) -> str:
        return (f"{self.quantity}: declared {self.declared:.6g}, estimated {self.estimate:.6g} "
                f"± {self.se:.2g} from the plug-in's samples ({self.gap_se:.1f} SE){' ' + self.detail if self.detail else ''}")


def frequency_agreements(name: str, declared: np.ndarray, draws: np.ndarray, labels=None) -> list[Agreement]:
    """Per-category frequency of ``draws`` (ints in [0, len(declared))) against the declared probabilities."""
    n = draws.size
    freq = np.bincount(draws.ravel(), minlength=declared.size) / n
    out = []
    for c, (p, f) in enumerate(zip(declared, freq)):
        se = max(np.sqrt(max(p * (1 - p), 1.0 / n) / n), 1e-12)
        out.append(Agreement(f"{name}[{labels[c] if labels is not None else c}]", float(p), float(f), float(se)))
    return out
