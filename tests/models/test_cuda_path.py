"""The CUDA path, guarded on a machine without a GPU.

* Every backbone runs on fake CUDA tensors (``FakeTensorMode``: shapes, dtypes and devices are
  propagated through every op, nothing is computed): train and eval mode, autograd on and off,
  fp32 and CUDA fp16 autocast, a fresh model per case. A tensor made on the CPU inside the
  forward (a mask, an index) fails here as a device mismatch; the Linears and convolutions
  must compute in fp16 under autocast and in fp32 without.
* The attention path CUDA takes in training (one fused SDPA call with a bias that needs a
  gradient; the CPU writes the formula out instead) gives the written-out path's gradients.
"""
import contextlib

import pytest
import torch
from small_backbones import CASES, build
from torch._subclasses.fake_tensor import FakeTensorMode

from visattn_mm.models.layers import attention


def _fake_cuda_works() -> bool:
    """torch 2.1's fake tensors still initialise the CUDA driver for a CUDA device."""
    try:
        with FakeTensorMode():
            torch.empty(1, device='cuda')
        return True
    except (RuntimeError, AssertionError):
        return False


fake_cuda = pytest.mark.skipif(not _fake_cuda_works(),
                               reason='fake CUDA tensors need a driver in this torch (< 2.2)')


@contextlib.contextmanager
def cuda_fp16_autocast():
    """CUDA fp16 autocast switched on without a GPU (``torch.autocast('cuda')`` asks for one)."""
    if hasattr(torch, 'get_autocast_dtype'):  # torch >= 2.4: per device type
        def set_(enabled, dtype):
            torch.set_autocast_enabled('cuda', enabled)
            torch.set_autocast_dtype('cuda', dtype)
        prev = torch.is_autocast_enabled('cuda'), torch.get_autocast_dtype('cuda')
    else:  # torch 2.1: the GPU's own setters
        def set_(enabled, dtype):
            torch.set_autocast_enabled(enabled)
            torch.set_autocast_gpu_dtype(dtype)
        prev = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
    set_(True, torch.float16)
    torch.autocast_increment_nesting()
    try:
        yield
    finally:
        torch.autocast_decrement_nesting()
        set_(*prev)


MODES = [(train, grad, amp) for train in (True, False) for grad in (True, False)
         for amp in (False, True)]


@fake_cuda
@pytest.mark.parametrize('train,grad,amp', MODES,
                         ids=[f'{"train" if t else "eval"}-{"grad" if g else "nograd"}-'
                              f'{"fp16" if a else "fp32"}' for t, g, a in MODES])
@pytest.mark.parametrize('name', sorted(CASES))
def test_backbone_on_fake_cuda(name, train, grad, amp):
    model = build(name).train(train)
    H, W = CASES[name][1]
    with FakeTensorMode(allow_non_fake_inputs=True):
        model = model.to('cuda')
        assert all(p.device.type == 'cuda' for p in model.parameters())
        if getattr(model, 'channels_last_cfg', False) is None:  # the per-device default
            assert not model.channels_last
            assert all(p.is_contiguous() for p in model.parameters())
        x = torch.randn(2, 3, H, W, device='cuda')
        seen = set()  # what the Linears and convs computed in
        for m in model.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.register_forward_hook(lambda mod, args, out: seen.add(out.dtype))
        with torch.set_grad_enabled(grad), \
                (cuda_fp16_autocast() if amp else contextlib.nullcontext()):
            outs = model(x)
    assert outs and all(o.device.type == 'cuda' for o in outs)
    assert all(o.dtype in (torch.float16, torch.float32) for o in outs)
    assert all(o.requires_grad == grad for o in outs)
    assert seen == ({torch.float16} if amp else {torch.float32})


def test_cuda_attention_training_path_matches_the_written_out_path(monkeypatch):
    """Window attention with a relative-position bias (needs a gradient) and a shift mask,
    through one fused SDPA call as on CUDA, and written out as on the CPU: the same outputs
    and the same gradients for the input, the bias table and the projections."""
    from visattn_mm.models.layers import ShiftWindowMSA
    torch.manual_seed(0)
    fused = ShiftWindowMSA(16, 2, 4, shift_size=-2)
    plain = ShiftWindowMSA(16, 2, 4, shift_size=-2)
    plain.load_state_dict(fused.state_dict())
    plain.w_msa.fused_attn = False
    with torch.no_grad():  # a bias that matters
        fused.w_msa.relative_position_bias_table.normal_(std=0.5)
        plain.w_msa.relative_position_bias_table.copy_(fused.w_msa.relative_position_bias_table)
    x = torch.randn(2, 8, 12, 16, dtype=torch.float64)
    fused.double(), plain.double()

    calls = []
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def counting_sdpa(*args, **kwargs):
        calls.append(kwargs.get('attn_mask'))
        return real_sdpa(*args, **kwargs)

    # the CUDA branch: the CPU switch of scaled_dot_product is not taken
    real = attention.scaled_dot_product

    def as_on_cuda(q, k, v, scale, bias=None, dropout_p=0., fused=True):
        if not fused:
            return real(q, k, v, scale, bias, dropout_p, fused=False)
        if bias is not None:
            bias = bias.to(q.dtype).reshape((1,) * (q.dim() - bias.dim()) + bias.shape)
        return counting_sdpa(q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)

    import visattn_mm.models.layers.window_attention as window_attention
    monkeypatch.setattr(window_attention, 'scaled_dot_product', as_on_cuda)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    outs = [m(t) for m, t in zip((fused, plain), xs)]
    assert len(calls) == 1 and calls[0].requires_grad  # one fused call, bias with a gradient
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-10)
    grad = torch.randn_like(outs[0])
    for out in outs:
        out.backward(grad)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=1e-9, atol=1e-10)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-10, msg=name)


def test_memory_format_follows_the_device():
    """channels_last=None: NHWC weights on the CPU, NCHW once moved to another device (CUDA,
    faked; or 'meta'), NHWC again back on the CPU; an explicit choice is kept everywhere."""
    from visattn_mm.models.backbones import PSLT
    model = build('FCViT')
    conv = next(p for p in model.parameters() if p.dim() == 4)
    assert model.channels_last and conv.is_contiguous(memory_format=torch.channels_last)
    if _fake_cuda_works():
        on_cuda = build('FCViT')
        with FakeTensorMode(allow_non_fake_inputs=True):
            on_cuda.to('cuda')
            assert not on_cuda.channels_last
            assert all(p.is_contiguous() for p in on_cuda.parameters())
    model.to('meta')
    assert not model.channels_last and all(p.is_contiguous() for p in model.parameters())
    model.to_empty(device='cpu')
    assert model.channels_last
    assert all(p.is_contiguous(memory_format=torch.channels_last)
               for p in model.parameters() if p.dim() == 4)
    fixed = build('FCViT')
    fixed.channels_last_cfg = True
    fixed.to('meta')
    assert fixed.channels_last
    pslt = PSLT(arch='tiny')
    assert all(s.keep_nhwc_memory for s in pslt.stages)
    pslt.to('meta')
    assert not any(s.keep_nhwc_memory for s in pslt.stages)
