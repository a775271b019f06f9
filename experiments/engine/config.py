"""Experiment configs: frozen dataclasses loaded from one TOML file per experiment, one table per profile.

Validation happens here, before any work: dacite rejects unknown keys and wrong types (naming the field path),
then every nested dataclass's ``check()`` rejects impossible values. Every error becomes one ``ConfigError``
whose message starts with the dotted field name.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from pathlib import Path
from typing import Any

import dacite

PROFILES = ("quick", "default", "paper")


class ConfigError(ValueError):
    """A config that cannot run; the message names the offending field."""


def positive(name: str, value) -> None:
    """The check every section uses for counts and sizes (raises the ``field: ...`` form ``_check_tree`` prefixes)."""
    if value < 1:
        raise ValueError(f"{name}: must be >= 1, got {value}")


def increasing(name: str, values, low: float = 1) -> None:
    """A sweep's values: non-empty, each >= ``low``, strictly increasing (so every point is drawn once, in order)."""
    if not values or any(v < low for v in values):
        raise ValueError(f"{name}: needs values >= {low:g}, got {values}")
    if list(values) != sorted(set(values)):
        raise ValueError(f"{name}: must be strictly increasing, got {values}")


def _int_as_float(value: Any) -> Any:
    # TOML writes 1 for 1.0; a float field should accept it, but never a bool.
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


_DACITE = dacite.Config(strict=True, cast=[tuple], type_hooks={float: _int_as_float})


def _is_tuple(hint: Any) -> bool:
    return typing.get_origin(hint) is tuple


def _type_name(hint: Any) -> str:
    if _is_tuple(hint):
        args = typing.get_args(hint)
        return f"a list of {getattr(args[0], '__name__', args[0])}" if args else "a list"
    if dataclasses.is_dataclass(hint):
        return "a table"
    return getattr(hint, "__name__", str(hint))


def _precheck(cls: type, raw: Any, path: str) -> None:
    """Name unknown keys with their full dotted path (dacite drops the path), refuse bools for ints (dacite
    accepts True for an int field, since bool subclasses int), read a lone value given for a list field as a
    one-element list (the only meaning it can have), and refuse a list or a table for a scalar field.
    Mutates ``raw`` in place (it is always a private copy)."""
    if not (dataclasses.is_dataclass(cls) and isinstance(raw, dict)):
        return
    hints = typing.get_type_hints(cls)
    for key, value in list(raw.items()):
        if key not in hints:
            raise ConfigError(f"{path}{key}: unknown key (allowed: {', '.join(sorted(hints))})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}{key}: expected a table of fields, got {value!r}")
            _precheck(hint, value, f"{path}{key}.")
            continue
        if _is_tuple(hint) and not isinstance(value, (list, tuple)):
            if isinstance(value, dict):
                raise ConfigError(f"{path}{key}: expected {_type_name(hint)}, got a table")
            raw[key] = value = [value]
        if not _is_tuple(hint) and isinstance(value, (list, tuple, dict)):
            raise ConfigError(f"{path}{key}: expected {_type_name(hint)}, got {'a table' if isinstance(value, dict) else 'a list'} {value!r}")
        items = value if _is_tuple(hint) else [value]
        elem = (typing.get_args(hint) or (Any,))[0] if _is_tuple(hint) else hint
        for v in items:
            if elem is int and isinstance(v, bool):
                raise ConfigError(f"{path}{key}: expected int, got bool {v!r}")
            if elem in (int, float) and isinstance(v, str):
                raise ConfigError(f"{path}{key}: expected {elem.__name__}, got text {v!r}")
            if elem is int and isinstance(v, float):
                raise ConfigError(f"{path}{key}: expected int, got {v!r}")
            if elem is str and not isinstance(v, str):
                raise ConfigError(f"{path}{key}: expected str, got {v!r}")


def _check_tree(obj: Any, path: str = "") -> None:
    """Call ``check()`` on every nested dataclass, prefixing its field names with their dotted path."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_tree(value, f"{path}{f.name}.")
    if hasattr(obj, "check"):
        try:
            obj.check()
        except ValueError as err:
            raise ConfigError(f"{path}{err}") from None


def build(cls: type, raw: dict) -> Any:
    """Build and validate a config dataclass from a plain dict; raise ConfigError naming the field."""
    raw = json.loads(json.dumps(raw))  # a private copy: _precheck normalises it in place
    _precheck(cls, raw, "")
    try:
        obj = dacite.from_dict(cls, raw, config=_DACITE)
    except dacite.UnexpectedDataError as err:
        raise ConfigError(f"{', '.join(sorted(err.keys))}: unknown key(s)") from None
    except dacite.WrongTypeError as err:
        raise ConfigError(f"{err.field_path}: expected {getattr(err.field_type, '__name__', err.field_type)}, "
                          f"got {err.value!r}") from None
    except dacite.DaciteError as err:
        raise ConfigError(str(err)) from None
    _check_tree(obj)
    return obj


def _annotation_at(cls: type, dotted: str) -> Any:
    hint: Any = cls
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(hint):
            raise ConfigError(f"{dotted}: '{part}' is inside a field that is not a section")
        hints = typing.get_type_hints(hint)
        if part not in hints:
            raise ConfigError(f"{dotted}: unknown key")
        hint = hints[part]
    return hint


def parse_override(cls: type, item: str) -> tuple[str, Any]:
    """Parse ``a.b=value``: the value is a TOML literal, except that a str field takes the text as is."""
    if "=" not in item:
        raise ConfigError(f"{item}: an override must look like key=value")
    key, text = (s.strip() for s in item.split("=", 1))
    hint = _annotation_at(cls, key)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if hint is str or (_is_tuple(hint) and typing.get_args(hint)[:1] == (str,)):
            return key, text  # a str field takes bare text as is: --set data.class_law=zipf
        expected = _type_name(hint)
        raise ConfigError(f"{key}: expected {expected}, cannot read {text!r} as one") from None
    return key, value  # a quoted TOML string ("zipf") is the same str, unquoted


def _set_path(raw: dict, dotted: str, value: Any) -> None:
    *heads, last = dotted.split(".")
    node = raw
    for h in heads:
        node = node.setdefault(h, {})
    node[last] = value


def load(path: Path, cls: type, profile: str, overrides: list[str] = ()) -> Any:
    """Load the TOML file's table ``profile``, apply ``--set`` overrides, validate."""
    if profile not in PROFILES:
        raise ConfigError(f"profile: must be one of {PROFILES}, got {profile!r}")
    path = Path(path)
    with open(path, "rb") as fh:
        tables = tomllib.load(fh)
    if profile not in tables:
        raise ConfigError(f"profile: {path.name} has no table [{profile}]")
    raw = json.loads(json.dumps(tables[profile]))  # deep copy
    for item in overrides:
        key, value = parse_override(cls, item)
        _set_path(raw, key, value)
    return build(cls, raw)


def _canonical(obj: Any) -> Any:
    """``dataclasses.asdict``, except that a field marked ``metadata={"omit_default": True}`` is left out while
    it holds its default: a field added later (a plug-in generator) then leaves every existing hash, cell id
    and random stream exactly as it was."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("omit_default") and value == f.default:
                continue
            out[f.name] = _canonical(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _canonical(v) for k, v in obj.items()}
    return obj


def to_json(obj: Any) -> str:
    """Canonical JSON of a config: sorted keys, so equal configs give equal text and equal hashes."""
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"))


def config_hash(obj: Any) -> str:
    """The cell id: a short SHA-256 of the canonical JSON (collisions at 64 bits are not a practical concern)."""
    return hashlib.sha256(to_json(obj).encode()).hexdigest()[:16]
