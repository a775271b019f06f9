"""The code fingerprint of a cell: which source made its numbers.

A cell's numbers depend on the module that runs it and on everything that module imports, transitively,
inside this suite's packages (function-level imports included: grimp reads them all), plus the engine modules
that write the result and the versions of torch and numpy. The fingerprint hashes each of those modules'
syntax tree with docstrings removed, so that an edit to a docstring, a comment or the README re-runs nothing,
while any change to code that can move a number re-runs the cells that depend on it, and only those.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json

import grimp
import numpy as np
import torch

PACKAGES = ("theory", "synthetic_data", "experiments", "analysis")
# Written by every cell, but not imported by a chapter's run module: the store decides the bytes of rows.csv.
ALWAYS = ("experiments.engine.store", "experiments.engine.fingerprint")


@functools.lru_cache(maxsize=1)
def _graph():
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_digest(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return "absent"
    with open(spec.origin, "rb") as fh:
        tree = _strip_docstrings(ast.parse(fh.read(), filename=spec.origin))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def dependencies(module: str) -> list[str]:
    """``module`` and every module of the suite it imports, directly or not, sorted."""
    graph = _graph()
    return sorted({module, *graph.find_upstream_modules(module), *ALWAYS})


@functools.lru_cache(maxsize=None)
def fingerprint(module: str) -> dict:
    """{"code": short hash, "modules": {name: digest}, "torch": version, "numpy": version}."""
    modules = {m: source_digest(m) for m in dependencies(module)}
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    blob = json.dumps({"modules": modules, **versions}, sort_keys=True).encode()
    return {"code": hashlib.sha256(blob).hexdigest()[:16], "modules": modules, **versions}
