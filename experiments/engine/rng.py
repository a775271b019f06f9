"""Every random stream comes from (an id, a seed, a stream name) through ``numpy.random.SeedSequence``.

No global RNG state is read or written, so a cell's numbers do not depend on what ran before it, on the
worker that ran it, or on how many cells ran in parallel.
"""
from __future__ import annotations

import zlib

import numpy as np
import torch


def seed_sequence(ident: str, seed: int, stream: str) -> np.random.SeedSequence:
    """``ident`` is a hex hash (a cell id or a data-spec id); ``stream`` separates uses within one seed."""
    return np.random.SeedSequence(entropy=int(ident, 16), spawn_key=(int(seed), zlib.crc32(stream.encode())))


def numpy_rng(ident: str, seed: int, stream: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed_sequence(ident, seed, stream)))


def torch_generator(ident: str, seed: int, stream: str, device: str = "cpu") -> torch.Generator:
    state = seed_sequence(ident, seed, stream).generate_state(1, dtype=np.uint64)[0]
    gen = torch.Generator(device=device)
    gen.manual_seed(int(state) & ((1 << 63) - 1))
    return gen
