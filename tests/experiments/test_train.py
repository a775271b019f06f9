"""Tests for experiments/engine/train.py: Adam arithmetic, batched == looped, divergence guard."""

import json
import pickle

import pytest
import torch

from experiments.encoders import encode, init_encoder
from experiments.objectives import logistic, ntxent
from experiments.engine.train import TrainingDiverged, _adam_step_fused, adam_step_reference, gather_rows, train


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


# ----------------------------------------------------------------- same arithmetic as torch.optim.Adam

@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9)])
def test_single_model_equals_torch_adam(weight_decay, betas, fused):
    steps, lr = 40, 0.01
    p0 = init_encoder("mlp", 5, 3, 1, gens([0]), width=6)
    x = torch.randn(1, 16, 5, generator=torch.Generator().manual_seed(1))
    target = torch.randn(1, 16, 3, generator=torch.Generator().manual_seed(2))

    def loss_fn(p, step):
        return (encode(p, x * (1 + 0.1 * step)) - target).pow(2).mean((1, 2))

    ours = train(p0, loss_fn, steps, lr, [steps], weight_decay=weight_decay, betas=betas, fused_adam=fused)[-1][1]
    ref = {k: v.clone().requires_grad_() for k, v in p0.items()}
    opt = torch.optim.Adam(ref.values(), lr=lr, betas=betas, weight_decay=weight_decay, foreach=False)
    for step in range(steps):
        opt.zero_grad()
        loss_fn(ref, step).sum().backward()
        opt.step()
    for k in p0:
        torch.testing.assert_close(ours[k], ref[k].detach(), rtol=0, atol=1e-6)
    assert not torch.allclose(ours["W1"], p0["W1"], atol=1e-3)  # it did train


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_fused_adam_step_is_the_reference_step_to_a_few_ulp(weight_decay):
    # The opt-in fused step against the foreach step it may replace, three steps from the same state: the same
    # update up to rounding (4 float32 ulp of |parameter| + the t updates of size lr, which is what a parameter
    # near 0 is made of).
    gen = torch.Generator().manual_seed(0)
    shapes = [(6, 30, 64), (6, 1, 64), (6, 64, 12)]
    ps = [torch.randn(s, generator=gen) for s in shapes]
    a = [[p.clone() for p in ps], [torch.zeros(s) for s in shapes], [torch.zeros(s) for s in shapes]]
    b = [[p.clone() for p in ps], [torch.zeros(s) for s in shapes], [torch.zeros(s) for s in shapes]]
    steps = [torch.zeros(()) for _ in shapes]
    lr_cols = [torch.full((6,) + (1,) * (len(s) - 1), 3e-3) for s in shapes]
    for t in (1, 2, 3):
        grads = [torch.randn(s, generator=gen) for s in shapes]
        adam_step_reference(a[0], grads, a[1], a[2], lr_cols, t, 0.9, 0.999, 1e-8, weight_decay)
        _adam_step_fused(b[0], [g.clone() for g in grads], b[1], b[2], steps, 3e-3, 0.9, 0.999, 1e-8, weight_decay)
        for pa, pb in zip(a[0], b[0]):
            ulp = torch.finfo(torch.float32).eps * (pa.abs() + t * 3e-3)
            assert bool(((pa - pb).abs() <= 4 * ulp).all())
    moved = max(float((pa - p).abs().max()) for pa, p in zip(a[0], ps))
    assert moved > 1e-3   # three steps of lr 3e-3 moved the parameters: the comparison was not of no-ops


def test_minus_inf_and_plus_inf_losses_are_caught():
    params, loss_fn, lr = make_problem("linear", "logistic", [0, 1])
    for bad in (float("-inf"), float("inf")):
        with pytest.raises(TrainingDiverged, match="step 1: model 1"):
            train(params, lambda p, s: loss_fn(p, s) + torch.tensor([0.0, bad if s == 1 else 0.0]), 3, lr, [])


# ----------------------------------------------------------------- batched == looped

G, N, B, K, D_IN, D_OUT = 8, 64, 16, 3, 6, 4


def make_problem(kind, objective, models):
    """Per-model data (own generator), per-model batch indices, per-model lr / temperature.

    ``models`` selects which of the G models to build, so the batched run uses all
    of them and the looped run builds one at a time from the same generators.
    """
    data = torch.stack([torch.randn(N, 3, D_IN, generator=torch.Generator().manual_seed(100 + g)) for g in models])
    idx = torch.stack([torch.randint(0, N, (50, B * (K + 2)), generator=torch.Generator().manual_seed(200 + g))
                       for g in models], 1)  # (steps, len(models), B(K+2))
    params = init_encoder(kind, D_IN, D_OUT, len(models), gens([300 + g for g in models]), width=10)
    lr = torch.tensor([0.002 * (1 + g) for g in models])
    temp = torch.tensor([0.1 + 0.1 * g for g in models])
    Gm = len(models)

    def loss_fn(p, step):
        rows = gather_rows(data, idx[step])  # (Gm, B(K+2), 3, D_IN)
        if objective == "ntxent":
            z = encode(p, rows[:, :B, :2].reshape(Gm, 2 * B, D_IN)).view(Gm, B, 2, D_OUT)
            return ntxent(z[:, :, 0], z[:, :, 1], temp)
        z = encode(p, rows[:, :, 0])
        return logistic(z[:, :B], z[:, B:2 * B], z[:, 2 * B:].reshape(Gm, B, K, D_OUT))

    return params, loss_fn, lr


@pytest.mark.parametrize("kind,objective", [("linear", "logistic"), ("mlp", "logistic"), ("mlp", "ntxent")])
def test_batched_equals_looped(kind, objective):
    params, loss_fn, lr = make_problem(kind, objective, list(range(G)))
    batched = train(params, loss_fn, 50, lr, [0, 25, 50])
    assert [s for s, _ in batched] == [0, 25, 50]
    for g in range(G):
        p1, f1, lr1 = make_problem(kind, objective, [g])
        looped = train(p1, f1, 50, lr1, [0, 25, 50])
        for (sb, pb), (sl, pl) in zip(batched, looped):
            assert sb == sl
            for name in pb:
                torch.testing.assert_close(pb[name][g], pl[name][0], rtol=0, atol=1e-5)
    moved = (batched[-1][1][next(iter(params))] - params[next(iter(params))]).abs().flatten(1).amax(1)
    assert (moved > 1e-3).all()  # every model actually trained


def test_per_model_lr_zero_freezes_only_that_model():
    params, loss_fn, _ = make_problem("mlp", "logistic", list(range(4)))
    lr = torch.tensor([0.01, 0.0, 0.01, 0.03])
    out = train(params, loss_fn, 20, lr, [20])[-1][1]
    for name in params:
        assert torch.equal(out[name][1], params[name][1])
        for g in (0, 2, 3):
            assert not torch.allclose(out[name][g], params[name][g], atol=1e-4)


def test_checkpoints_are_detached_clones_and_input_untouched():
    params, loss_fn, lr = make_problem("linear", "logistic", [0, 1])
    before = {k: v.clone() for k, v in params.items()}
    ck = train(params, loss_fn, 5, lr, [5, 0, 3])
    assert [s for s, _ in ck] == [0, 3, 5]
    assert torch.equal(ck[0][1]["W"], before["W"]) and torch.equal(params["W"], before["W"])
    assert not ck[-1][1]["W"].requires_grad
    mid = ck[1][1]["W"].clone()
    ck[-1][1]["W"].add_(1.0)  # mutating a snapshot must not touch the others
    assert torch.equal(ck[1][1]["W"], mid) and torch.equal(ck[0][1]["W"], before["W"])


def test_gather_rows():
    data = torch.randn(3, 7, 2, generator=torch.Generator().manual_seed(0))
    idx = torch.randint(0, 7, (3, 5), generator=torch.Generator().manual_seed(1))
    want = torch.stack([data[g, idx[g]] for g in range(3)])
    assert torch.equal(gather_rows(data, idx), want)
    shared = data[0].expand(3, 7, 2)
    assert torch.equal(gather_rows(shared, idx), torch.stack([data[0, idx[g]] for g in range(3)]))
    with pytest.raises(ValueError, match="^idx"):
        gather_rows(data, idx[:2])


# ----------------------------------------------------------------- divergence guard

def test_nan_injection_raises_with_step_model_and_context():
    params, loss_fn, lr = make_problem("mlp", "logistic", [0, 1, 2])
    context = json.dumps({"cell": "k=3", "seed": 7})

    def poisoned(p, step):
        loss = loss_fn(p, step)
        if step == 7:
            loss = loss * torch.tensor([1.0, 1.0, float("nan")])
        return loss

    with pytest.raises(TrainingDiverged) as info:
        train(params, poisoned, 20, lr, [20], context=context)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.step == 7 and err.model == 2
    msg = str(err)
    assert "step 7" in msg and "model 2" in msg and "nan" in msg and context in msg
    # It survives the trip back from a worker process.
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, TrainingDiverged) and str(back) == msg and back.step == 7


def test_nan_in_parameters_is_caught_on_next_forward():
    params, loss_fn, _ = make_problem("linear", "logistic", [0, 1])
    lr = torch.tensor([0.01, float("inf")])
    with pytest.raises(ValueError, match="^lr"):
        train(params, loss_fn, 5, lr, [])
    bad = {k: v.clone() for k, v in params.items()}
    bad["W"][1, 0, 0] = float("inf")
    with pytest.raises(TrainingDiverged, match="step 0: model 1"):
        train(bad, loss_fn, 5, 0.01, [])


def test_max_loss_guard():
    params, loss_fn, lr = make_problem("linear", "logistic", [0, 1])
    with pytest.raises(TrainingDiverged, match="step 0: model 0"):
        train(params, lambda p, s: loss_fn(p, s) + torch.tensor([1e7, 0.0]), 3, lr, [], context="cfg")
    with pytest.raises(TrainingDiverged, match="step 2: model 1 has loss 20.0"):
        train(params, lambda p, s: loss_fn(p, s) * 0 + torch.tensor([0.0, 10.0 * s]), 3, lr, [], max_loss=15.0)


def test_bad_arguments():
    params, loss_fn, lr = make_problem("linear", "logistic", [0, 1])
    with pytest.raises(ValueError, match="^lr"):
        train(params, loss_fn, 3, torch.ones(3), [])
    with pytest.raises(ValueError, match="^lr"):
        train(params, loss_fn, 3, -0.1, [])
    with pytest.raises(ValueError, match="^checkpoint_steps"):
        train(params, loss_fn, 3, lr, [4])
    with pytest.raises(ValueError, match="^loss_fn"):
        train(params, lambda p, s: loss_fn(p, s).sum(), 3, lr, [])
    with pytest.raises(ValueError, match="^params"):
        train({"a": torch.zeros(2, 3), "b": torch.zeros(3, 3)}, loss_fn, 3, lr, [])
