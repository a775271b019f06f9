"""The negatives chapter's InfoNCE objective against an explicit loop, at a degenerate point, and its shared form."""
import math

import numpy as np
import pytest
import torch

from experiments.objectives import OBJECTIVES, infonce


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def infonce_np(z, zp, zn):
    G, B, K = zn.shape[:3]
    out = np.zeros(G)
    for g in range(G):
        for b in range(B):
            pos = float(np.dot(z[g, b], zp[g, b]))
            den = math.exp(pos) + sum(math.exp(float(np.dot(z[g, b], zn[g, b, k]))) for k in range(K))
            out[g] += -math.log(math.exp(pos) / den) / B
    return out


@pytest.mark.parametrize("G,B,K,d", [(1, 1, 1, 1), (2, 3, 4, 2), (3, 5, 7, 3)])
def test_infonce_matches_the_loop(G, B, K, d):
    z, zp, zn = rand(G, B, d, seed=1), rand(G, B, d, seed=2), rand(G, B, K, d, seed=3)
    got = OBJECTIVES["infonce"](z, zp, zn).numpy()
    np.testing.assert_allclose(got, infonce_np(z.numpy(), zp.numpy(), zn.numpy()), rtol=1e-12)


def test_shared_negatives_equal_the_expanded_per_anchor_form():
    z, zp, zn = rand(2, 4, 3, seed=4), rand(2, 4, 3, seed=5), rand(2, 6, 3, seed=6)
    per_anchor = zn[:, None].expand(2, 4, 6, 3)
    torch.testing.assert_close(infonce(z, zp, zn), infonce(z, zp, per_anchor), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("K", [1, 5, 512])
def test_equal_scores_give_log_k_plus_1(K):
    z = torch.zeros(2, 3, 4, dtype=torch.float64)
    assert torch.allclose(infonce(z, z, torch.zeros(2, 3, K, 4, dtype=torch.float64)),
                          torch.full((2,), math.log(K + 1), dtype=torch.float64))


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="z_neg"):
        infonce(rand(2, 3, 4), rand(2, 3, 4), rand(2, 3, 5, 3))
