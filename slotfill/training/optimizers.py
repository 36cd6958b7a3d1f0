"""The optimiser and learning-rate schedule a run trains with, built so that training
never imports torch's compiler.

torch.optim imports torch._dynamo on an optimiser's first step and on its first
add_param_group, zero_grad, state_dict and load_state_dict, to keep compilation out of
them: 2-3 s, as long as importing torch itself and a sixth of a three-epoch ATIS run.
slotfill compiles nothing, so its optimisers step through torch's own update under
no_grad (what the skipped wrapper does outside compilation) and those four methods get
their plain function as the "compiler-disabled" one. Where torch's wrappers look
different, the optimisers are torch's own, unchanged.
"""

from __future__ import annotations

import functools
import math
import sys

import torch

from slotfill.config import Config

KINDS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def make_optimizer(cfg: Config, model: torch.nn.Module,
                   capturable: bool = False) -> torch.optim.Optimizer:
    """The configured optimiser, fused (one kernel for all parameters: ~5x faster steps
    than the default). `capturable`: its step can be recorded in a CUDA graph; the
    learning rate then lives in a device tensor that schedules update in place."""
    tc = cfg.train
    kind = _without_compiler(KINDS[tc.optimizer])
    device = next(model.parameters()).device
    kwargs = {"lr": learning_rate(tc.lr, device, capturable), "weight_decay": tc.weight_decay}
    if capturable and tc.optimizer != "sgd":  # SGD without momentum keeps no state
        kwargs["capturable"] = True
    params = parameter_groups(model, tc.encoder_lr, device, capturable)
    try:
        return kind(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # older torch: no fused CPU kernels
        return kind(params, **kwargs)


def parameter_groups(model: torch.nn.Module, encoder_lr: float | None,
                     device: torch.device, capturable: bool) -> list[dict]:
    """One group at train.lr; with train.encoder_lr, the pretrained transformer's
    parameters in a second group at that rate (the first group's rate is the one
    history.csv shows)."""
    named = list(model.named_parameters())
    if encoder_lr is None:
        return [{"params": [p for _, p in named]}]
    pretrained = [p for n, p in named if n.startswith("embedder.transformer.")]
    rest = [p for n, p in named if not n.startswith("embedder.transformer.")]
    return [{"params": rest},
            {"params": pretrained, "lr": learning_rate(encoder_lr, device, capturable)}]


def learning_rate(lr: float, device: torch.device, capturable: bool) -> float | torch.Tensor:
    return torch.tensor(lr, device=device) if capturable else lr


def make_scheduler(kind: str, optimizer: torch.optim.Optimizer, steps: int,
                   warmup: float = 0.0):
    """linear/cosine: decay per batch to 0 at the last step; plateau: per epoch on dev F1.
    `warmup`: the share of the steps over which the rate first rises from 0 (per batch);
    the decay then runs over the steps after it."""
    # (steps is an estimate when train.augment varies the batches: hence the clamps)
    rise = max(1, round(warmup * steps)) if warmup else 0
    rest = max(1, steps - rise)
    factors = {"constant": lambda i: 1.0,
               "linear": lambda i: max(0.0, 1 - i / rest),
               "cosine": lambda i: 0.5 * (1 + math.cos(math.pi * min(i / rest, 1.0)))}
    if kind in factors and (kind != "constant" or rise):
        decay = factors[kind]

        def factor(i: int) -> float:
            return (i + 1) / (rise + 1) if i < rise else decay(i - rise)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        # plain numbers: a device-tensor base rate would make every step wait for the
        # device to read it back (the rate itself is then filled in place, no wait)
        scheduler.base_lrs = [float(lr) for lr in scheduler.base_lrs]
        return scheduler
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5,
                                                          patience=0)
    return None


@functools.cache
def _without_compiler(kind: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """`kind`, stepping without the compiler's wrapper (the module docstring says why)."""
    update = getattr(kind.step, "__wrapped__", None)  # the step under torch's wrapper
    if update is None or "torch._dynamo" in sys.modules:
        return kind
    _plain_optimizer_methods()

    def step(self, closure=None):
        with torch.no_grad():
            return update(self, closure)
    step.__doc__ = kind.step.__doc__
    return type(kind.__name__, (kind,), {"step": step, "__module__": __name__})


def _plain_optimizer_methods() -> None:
    """Give torch._disable_dynamo's wrappers of Optimizer's methods their own function as
    the disabled one, which they would otherwise import torch._dynamo to make."""
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        plain = getattr(getattr(torch.optim.Optimizer, name, None), "__wrapped__", None)
        if plain is not None and not hasattr(plain, "__dynamo_disable"):
            plain.__dynamo_disable = plain
