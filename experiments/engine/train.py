"""Batched Adam over G independent models sharing one set of tensors.

torch.optim.Adam has one learning rate per parameter group, not per slice of a
tensor, so learning-rate variants could not share a batch. This is Adam with
the same per-element arithmetic as torch.optim.Adam (L2 weight decay added to
the gradient, bias-corrected moments, eps added after the square root), with
lr broadcast along the leading model axis.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

from experiments.engine import timing

__all__ = ["TrainingDiverged", "train", "gather_rows", "adam_step_reference"]

_FUSED_DEVICES = {"cpu", "cuda"}   # where torch._fused_adam_ has a kernel


def gather_rows(data: Tensor, idx: Tensor) -> Tensor:
    """Per-model batch: out[g, m] = data[g, idx[g, m]].

    Args:
        data: (G, N, ...) one data set per model (expand a shared (N, ...) set
            with ``data.expand(G, ...)``: no copy is made of it).
        idx: (G, M) integer row indices into each model's own data.

    Returns:
        (G, M, ...).
    """
    if data.ndim < 2 or idx.ndim != 2 or idx.shape[0] != data.shape[0]:
        raise ValueError(f"idx: expected shape (G={data.shape[0]}, M) for data {tuple(data.shape)} (got {tuple(idx.shape)})")
    G, N = data.shape[:2]
    if data.stride(0) == 0:
        # A shared data set broadcast over models: index it once, no G-fold copy.
        return data[0].index_select(0, idx.reshape(-1)).view(G, idx.shape[1], *data.shape[2:])
    # index_select on the flattened (G*N, ...) view is ~20x faster on CPU than
    # the advanced indexing data[arange(G)[:, None], idx].
    offsets = torch.arange(G, device=idx.device).unsqueeze(1) * N
    flat = data.reshape(G * N, *data.shape[2:]).index_select(0, (idx + offsets).reshape(-1))
    return flat.view(G, idx.shape[1], *data.shape[2:])


class TrainingDiverged(RuntimeError):
    """A model's loss became non-finite or exceeded ``max_loss``.

    Attributes: step, model (index along G), loss (float), context (caller's string).
    """

    def __init__(self, step: int, model: int, loss: float, context: str):
        self.step, self.model, self.loss, self.context = step, model, loss, context
        super().__init__(f"training diverged at step {step}: model {model} has loss {loss!r}; context: {context}")

    def __reduce__(self):
        # Default exception pickling re-calls __init__ with the message only, which
        # fails; runs in worker processes (joblib) must send this error back intact.
        return (TrainingDiverged, (self.step, self.model, self.loss, self.context))


def _as_lr(lr: float | Tensor, G: int, like: Tensor) -> Tensor:
    """lr as a (G,) tensor on ``like``'s device/dtype, validated."""
    t = torch.as_tensor(lr, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(G)
    if t.shape != (G,):
        raise ValueError(f"lr: must be a float or a ({G},) tensor (got shape {tuple(t.shape)})")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(f"lr: must be finite and >= 0 (got {t.tolist()})")
    return t


def _first_bad(loss: Tensor, max_loss: float) -> int | None:
    """Index of the first model whose loss is non-finite or above max_loss, else None."""
    # One reduction and one host sync per step (aminmax propagates NaN; -inf shows in the min, +inf in the max);
    # the full index search only runs on failure.
    lo, hi = (float(v) for v in torch.aminmax(loss))
    if math.isfinite(lo) and hi <= max_loss:
        return None
    bad = ~torch.isfinite(loss) | (loss > max_loss)
    return int(torch.nonzero(bad)[0, 0])


def adam_step_reference(ps, grads, ms, vs, lr_cols, t: int, b1: float, b2: float, eps: float,
                        weight_decay: float) -> None:
    """One Adam update with per-model learning rates (lr_cols: (G, 1, ...) per param), in place: the foreach
    code of the batched step as it was before the fused path. On the CPU each _foreach op is a loop of
    per-tensor kernels, about 12 passes over every parameter. Used where the models' lr differ, and as the oracle
    of tests/experiments/test_train.py and the baseline of experiments/bench_train_step.py."""
    bc1 = 1.0 - b1**t
    bc2_sqrt = (1.0 - b2**t) ** 0.5
    with torch.no_grad():
        if weight_decay:
            grads = torch._foreach_add(grads, ps, alpha=weight_decay)
        torch._foreach_lerp_(ms, grads, 1.0 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1.0 - b2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, bc2_sqrt)
        torch._foreach_add_(denom, eps)
        upd = torch._foreach_div(ms, denom)
        torch._foreach_mul_(upd, lr_cols)
        torch._foreach_sub_(ps, upd, alpha=1.0 / bc1)


def _adam_step_fused(ps, grads, ms, vs, steps, lr: float, b1: float, b2: float, eps: float,
                     weight_decay: float) -> None:
    """One Adam update with one lr for every model: torch's fused kernel, one vectorised pass per parameter.
    Same arithmetic as adam_step_reference, rounded in another order (lr / bc1 folded into one step size, fused
    multiply-adds): one step differs by about 1 ulp of each parameter (tests/experiments/test_train.py holds it
    to 4 ulp), but training amplifies that: after 300 steps of the self_prediction MLP on noise targets the
    weights differ by up to 1e-2 (relative), so it is opt-in (``fused_adam=True``), not the default."""
    torch._foreach_add_(steps, 1.0)
    torch._fused_adam_(ps, grads, ms, vs, [], steps, lr=lr, beta1=b1, beta2=b2, weight_decay=weight_decay,
                       eps=eps, amsgrad=False, maximize=False)


def train(*args, **kwargs) -> list[tuple[int, dict[str, Tensor]]]:
    """Batched Adam (see ``_train``), timed as the cell's "train" stage."""
    with timing.stage("train"):
        return _train(*args, **kwargs)


def _train(
    params: dict[str, Tensor],
    loss_fn: Callable[[dict[str, Tensor], int], Tensor],
    steps: int,
    lr: float | Tensor,
    checkpoint_steps: Sequence[int],
    context: str = "",
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    max_loss: float = 1e6,
    fused_adam: bool = False,
) -> list[tuple[int, dict[str, Tensor]]]:
    """Minimise ``loss_fn(params, step).sum()`` with Adam, batched over models.

    Args:
        params: name -> Tensor (G, ...), every tensor with the same leading G.
            Not modified: training works on detached copies.
        loss_fn: (params, step) -> (G,) per-model losses; ``step`` in [0, steps)
            is the index of the update about to be taken (use it to pick the
            batch). Model g's loss must depend only on slice g of each param.
        steps: number of Adam updates.
        lr: float, or (G,) tensor of per-model learning rates (lr 0 freezes a model).
        checkpoint_steps: steps s in [0, steps] at which to snapshot the params
            AFTER s updates (0 = the initial params).
        context: free text (the caller's config JSON) put in divergence errors.
        weight_decay: L2 penalty added to the gradient (torch.optim.Adam's, not AdamW's).
        betas, eps: as in torch.optim.Adam.
        max_loss: a loss above this counts as divergence.
        fused_adam: with one lr for all models, take torch's fused Adam kernel (about 1 ulp per step from the
            foreach step; False: adam_step_reference, the step as it was).

    Returns:
        [(step, {name: detached clone (G, ...)})] in increasing step order.

    Raises:
        TrainingDiverged: after a forward pass in which some model's loss is
            non-finite or > max_loss, naming the step, the model, its loss and
            ``context``; also if the final parameters are non-finite.
    """
    if not params:
        raise ValueError("params: must not be empty")
    G = next(iter(params.values())).shape[0]
    for name, p in params.items():
        if p.ndim < 1 or p.shape[0] != G:
            raise ValueError(f"params: {name!r} has leading dim {tuple(p.shape)[:1]}, expected G={G}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: must be an int >= 0 (got {steps!r})")
    ckpts = sorted(set(int(s) for s in checkpoint_steps))
    if ckpts and (ckpts[0] < 0 or ckpts[-1] > steps):
        raise ValueError(f"checkpoint_steps: must lie in [0, {steps}] (got {list(checkpoint_steps)})")
    b1, b2 = float(betas[0]), float(betas[1])
    if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
        raise ValueError(f"betas: must lie in [0, 1) (got {betas})")
    if eps < 0 or weight_decay < 0:
        raise ValueError(f"eps/weight_decay: must be >= 0 (got eps={eps}, weight_decay={weight_decay})")

    names = list(params)
    ps = [params[n].detach().clone().requires_grad_(True) for n in names]
    lr_g = _as_lr(lr, G, ps[0])
    # Per-model lr as a column, broadcast against each param's trailing dims.
    lr_cols = [lr_g.view((G,) + (1,) * (p.ndim - 1)) for p in ps]
    ms = [torch.zeros_like(p) for p in ps]
    vs = [torch.zeros_like(p) for p in ps]
    # One lr for all models (the common case) takes torch's fused Adam kernel; per-model lrs the foreach step.
    fused = bool(fused_adam and ps[0].device.type in _FUSED_DEVICES and (lr_g == lr_g[0]).all())
    lr_one = float(lr_g[0])
    step_t = [torch.zeros((), dtype=torch.float32, device=p.device) for p in ps] if fused else []
    out: list[tuple[int, dict[str, Tensor]]] = []
    want = set(ckpts)

    def snapshot(step: int) -> None:
        out.append((step, {n: p.detach().clone() for n, p in zip(names, ps)}))

    if 0 in want:
        snapshot(0)
    for step in range(steps):
        loss = loss_fn(dict(zip(names, ps)), step)
        if loss.shape != (G,):
            raise ValueError(f"loss_fn: must return shape ({G},) (got {tuple(loss.shape)})")
        bad = _first_bad(loss.detach(), max_loss)
        if bad is not None:
            raise TrainingDiverged(step, bad, float(loss.detach()[bad]), context)
        grads = list(torch.autograd.grad(loss.sum(), ps))
        t = step + 1
        with torch.no_grad():
            if fused:
                _adam_step_fused(ps, grads, ms, vs, step_t, lr_one, b1, b2, eps, weight_decay)
            else:
                adam_step_reference(ps, grads, ms, vs, lr_cols, t, b1, b2, eps, weight_decay)
        if t in want:
            snapshot(t)
    final_bad = [n for n, p in zip(names, ps) if not bool(torch.isfinite(p).all())]
    if final_bad:
        p = dict(zip(names, ps))[final_bad[0]]
        model = int(torch.nonzero(~torch.isfinite(p.detach()).flatten(1).all(1))[0, 0])
        raise TrainingDiverged(steps, model, float("nan"), context + f" (non-finite parameter {final_bad[0]!r})")
    return out
