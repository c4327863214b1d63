"""Mixed precision on the CPU: every family runs under ``torch.autocast('cpu', torch.bfloat16)``.

bf16 keeps 8 significant bits, about 3 significant digits (a relative rounding error of up to 2^-8 =
3.9e-3), and a backbone rounds at every matmul, conv and norm. The tolerance stated here (and in the
README): each output's relative L2 error ``||bf16 - fp32|| / ||fp32||`` below 2e-2 (measured at most
1.3e-2 on these small archs), for the fused (SDPA) and the written-out attention alike.
A training step under autocast must give a finite fp32 gradient for every parameter, pointing the
way the fp32 gradient does: cosine similarity of the whole gradient vectors at least 0.99 (measured:
PSLT 0.995, the Swin forms 0.999, the others 0.99999). Loss and parameters stay fp32: autocast only
lowers the ops.
"""
from typing import Dict

import pytest
import torch

from small_backbones import CASES, build

OUT_REL_L2 = 2e-2
GRAD_COSINE = 0.99


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize('fused', [True, False], ids=['sdpa', 'written-out'])
@pytest.mark.parametrize('name', CASES)
def test_bf16_autocast_forward_matches_fp32(name, fused, monkeypatch):
    monkeypatch.setenv('VISATTN_FUSED_ATTN', '1' if fused else '0')  # read at construction
    model = build(name).eval()
    x = torch.randn(2, 3, *CASES[name][1], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = model(x)
    assert len(out) == len(ref)
    errors = [rel_l2(o, r) for o, r in zip(out, ref)]
    for o, r in zip(out, ref):
        assert o.shape == r.shape and torch.isfinite(o).all()
    assert max(errors) < OUT_REL_L2, f'{name}: bf16 relative L2 errors {errors}'


def _grads(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> Dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        outs = model(x)
    loss = sum((o.float() ** 2).mean() for o in outs)  # the loss in fp32, as a head's would be
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    return {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize('name', CASES)
def test_bf16_autocast_training_step(name):
    model = build(name).train()
    x = torch.randn(2, 3, *CASES[name][1], generator=torch.Generator().manual_seed(2))
    fp32 = _grads(model, x, bf16=False)
    bf16 = _grads(model, x, bf16=True)
    missing = [n for n, g in bf16.items() if g is None]
    assert not missing, f'{name}: no gradient under autocast for {missing[:3]}'
    bad = [n for n, g in bf16.items() if g.dtype != torch.float32 or not torch.isfinite(g).all()]
    assert not bad, f'{name}: non-finite or non-fp32 gradients for {bad[:3]}'
    flat = torch.cat([bf16[n].flatten() for n in fp32 if fp32[n] is not None])
    ref = torch.cat([fp32[n].flatten() for n in fp32 if fp32[n] is not None])
    cosine = torch.nn.functional.cosine_similarity(flat, ref, dim=0).item()
    assert cosine >= GRAD_COSINE, f'{name}: bf16 gradient at cosine {cosine} to fp32'
    # and an optimiser step keeps fp32 weights finite
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32
               for p in model.parameters())
