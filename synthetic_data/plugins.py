"""User generators ("plug-ins") that stand in for a chapter's built-in distribution in ``sslt check``.

A plug-in is a Python class named ``"package.module:Name"`` and built with keyword arguments. Each chapter
states its protocol (``PLUGIN_PROTOCOL`` in ``synthetic_data/<chapter>.py``, documented in docs/plugins.md):
the methods that sample, and the exact quantities its theorems need. A quantity the class cannot compute is
declared unknown by returning None; the suite then estimates it from the class's own samples, with a standard
error, and says so. A data spec names the plug-in by three fields that are left out of its hash while empty
(``experiments.engine.config.to_json``), so adding them changed no existing cell id:

- ``generator``: "package.module:Name";
- ``generator_args``: the keyword arguments as canonical JSON;
- ``generator_digest``: a hash of the plug-in's whole code (every module of its package, and the module of every
  class in its MRO outside the standard library and this suite), so that an edited plug-in, or an edited base
  class of it, is a new distribution.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import sys
from pathlib import Path

import numpy as np

OMIT = {"omit_default": True}
N_SE = 4.0  # a declared quantity further than this many standard errors from its estimate stops the check


class PluginError(ValueError):
    """A plug-in that cannot be used: the message names the plug-in, the method or quantity, and the problem."""


class PluginRaised(PluginError):
    """The plug-in's own code raised: ``plug-in <module:Class>.<method> raised <Type>: <message>`` (one line)."""


class Guarded:
    """A plug-in object whose every method call turns an exception of the user's code into a PluginRaised naming
    the plug-in, the method and the exception, so that no traceback of foreign code (nor a message that reads as
    the suite's own, e.g. numpy's "probabilities do not sum to 1") reaches the user. Attributes pass through."""

    def __init__(self, obj, path: str):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str):
        if name in ("_obj", "_path") or name.startswith("__"):  # unpickling, copy: no delegation before init
            raise AttributeError(name)
        try:
            value = getattr(self._obj, name)
        except AttributeError:
            raise
        except Exception as err:  # a property of the plug-in raised
            raise PluginRaised(raised_message(self._path, name, err)) from None
        if not callable(value) or isinstance(value, type):
            return value
        path = self._path

        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            except PluginError:
                raise
            except Exception as err:
                raise PluginRaised(raised_message(path, name, err)) from None
        return call


def _signature_accepts(cls: type, args: dict) -> bool:
    try:
        inspect.signature(cls).bind(**args)
    except TypeError:
        return False
    except ValueError:  # no signature to read
        return True
    return True


def raised_message(path: str, method: str, err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"plug-in {path}.{method} raised {type(err).__name__}: {text[0] if text else ''}".rstrip()


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
    if cls is None:
        raise PluginError(f"generator: module {module_name!r} has no class {name!r}")
    if not inspect.isclass(cls):
        raise PluginError(f"generator: {path} is a {type(cls).__name__}, not a class (the plug-in must be a class "
                          "built with the [args] as keyword arguments)")
    return cls


SUITE = ("theory", "synthetic_data", "experiments", "analysis")  # fingerprinted as the suite's own code


def _outside(module_name: str) -> bool:
    top = module_name.split(".")[0]
    return not (top in sys.stdlib_module_names or top == "builtins" or top in SUITE)


def _package_files(module) -> list[Path]:
    """Every .py file of the package ``module`` belongs to (the module alone when it is top-level)."""
    origin = getattr(module, "__file__", None)
    if not origin:
        return []
    package = (module.__name__.split(".")[0] if module.__name__ != "__main__" else "")
    top = sys.modules.get(package)
    roots = list(getattr(top, "__path__", []) or []) if top is not None and "." in module.__name__ else []
    if not roots and getattr(module, "__path__", None):
        roots = list(module.__path__)
    if not roots:
        return [Path(origin)]
    return sorted({p for r in roots for p in Path(r).rglob("*.py")})


def covered_files(path: str) -> list[Path]:
    """The source the plug-in's numbers depend on: every module of its package and the module of every class in
    its MRO that is neither the standard library nor this suite (whose code is in the cell's code fingerprint)."""
    cls = load_class(path)
    files: set[Path] = set()
    for klass in cls.__mro__:
        name = getattr(klass, "__module__", "builtins") or "builtins"
        if not _outside(name):
            continue
        module = sys.modules.get(name) or inspect.getmodule(klass)
        if module is None or not getattr(module, "__file__", None):
            continue
        files.update(_package_files(module) if klass is cls else [Path(module.__file__)])
    return sorted(files)


def source_digest(path: str) -> str:
    """A hash of every file :func:`covered_files` names, with their names relative to where they were found."""
    h = hashlib.sha256()
    files = covered_files(path)
    if not files:
        return "unknown"
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:
            data = b"<unreadable>"
        h.update(f.name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


def instantiate(generator: str, generator_args: str, protocol: dict[str, str]):
    """Build the plug-in and check it has every method/attribute of ``protocol`` (name -> what it is)."""
    cls = load_class(generator)
    try:
        args = json.loads(generator_args) if generator_args else {}
    except json.JSONDecodeError as err:
        raise PluginError(f"generator_args: not valid JSON ({err})") from None
    if not isinstance(args, dict):
        raise PluginError(f"generator_args: must be a table of keyword arguments, got {type(args).__name__}")
    try:
        obj = cls(**args)
    except TypeError as err:
        if not _signature_accepts(cls, args):  # wrong [args], not the plug-in's own code
            first = (str(err).strip().splitlines() or [""])[0]
            raise PluginError(f"args: {generator}({', '.join(args)}) does not take these arguments: {first}") from None
        raise PluginRaised(raised_message(generator, "__init__", err)) from None
    except Exception as err:
        raise PluginRaised(raised_message(generator, "__init__", err)) from None
    guarded = Guarded(obj, generator)
    missing = [name for name in protocol if not hasattr(guarded, name)]  # a raising property reads as raised
    if missing:
        raise PluginError(f"generator: {generator} lacks {', '.join(missing)} of the protocol "
                          f"({'; '.join(f'{m}: {protocol[m]}' for m in missing)}); see docs/plugins.md")
    return guarded


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
    if np.any(p < 0):
        i = int(np.argmin(p))
        raise PluginError(f"{name}: must be >= 0 and sum to 1, but entry {i} is {float(p[i]):.6g} (sum "
                          f"{float(p.sum()):.6g})")
    if abs(float(p.sum()) - 1.0) > 1e-9:
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


def log_loss_agreement(name: str, prob_observed: np.ndarray, probs: np.ndarray, detail: str = "") -> Agreement:
    """A declared conditional law tested as a distribution, by the log loss (a proper scoring rule): for draws
    i with declared law q_i (rows of ``probs``) and observed outcome of declared probability ``prob_observed[i]``,
    E[-log q_i(obs)] equals the mean entropy E[H(q_i)] when the declaration is the law the draws come from, and
    exceeds it by the mean KL divergence otherwise (up to the sign of the cross term, which the SE of the paired
    difference covers). A law that is right on average but wrong point by point (a Gaussian posterior on
    Student-t data) passes a mean test and fails this one."""
    with np.errstate(divide="ignore"):
        loss = -np.log(np.asarray(prob_observed, dtype=np.float64))
        plogp = np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0)
    entropy = -plogp.sum(axis=1)
    diff = loss - entropy
    n = diff.size
    if not np.all(np.isfinite(diff)):
        return Agreement(f"{name}: mean log loss against mean entropy", float(entropy.mean()), float("inf"), 0.0,
                         "(an outcome the declared law gives probability 0)")
    se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return Agreement(f"{name}: mean log loss against mean entropy", float(entropy.mean()),
                     float(entropy.mean() + diff.mean()), max(se, 1e-12), detail)
