"""The engine: runner, store, runs, config loading, CLI, RNG streams and batched training.

It knows no chapter. Chapters are found through ``experiments.engine.chapters`` (Python entry points in the
group ``sslt.chapters``), so a package outside this repository can add one without editing anything here.
"""
