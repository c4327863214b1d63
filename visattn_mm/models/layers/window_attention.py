"""Shifted-window multi-head self-attention, shared by the window-based families.

One wrapper, :class:`ShiftWindowMSA`, does everything around the attention: pad the map to whole
windows, cyclically shift it (in either direction), build the shift mask for the padded size (on
the input's device, kept per module for the last size), partition into windows, attend, reverse
the windows, undo the shift and crop the padding. The attention core, :class:`WindowMSA`, adds a
Swin relative position bias and computes (:func:`attend_windows`, which the Swin forms' window
attention calls too)

    Attention(q, k, v) = softmax(q k^T * scale + B + M) v

either with one fused ``F.scaled_dot_product_attention`` call (``B + M`` passed as its additive
``attn_mask``) or with the same formula written out; the path is fixed once in ``__init__``.

For PSLT's ladder branches the value comes from outside (the previous branch's output) and only
q, k are computed from the input: the core is then :class:`ExternalValueWindowMSA`
(``ShiftWindowMSA(..., window_msa=ExternalValueWindowMSA)``).
"""
import math
from typing import Dict, Final, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from torch import nn

from .attention import scaled_dot_product, use_fused_attn
from .units import Linear
from .tracing import is_tracing, pad_to_multiple, records_graph

# Masked logits get -inf, so their softmax weight is exactly 0. The released Swin and PSLT use
# -100, whose weight ~4e-44 is a denormal float: every matmul over the attention weights (and
# over their gradient) then ran many times slower on the CPU (docs/speed.md).
# The outputs differ by ~1e-44 relative. No row is all -inf: a token always sees itself.
MASK_FILL = float('-inf')


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut a map into non-overlapping windows of tokens.

    Args:
        x (Tensor): (B, H, W, C), with H and W multiples of ``window_size``.
        window_size (int): side of the square window, ws.

    Returns:
        Tensor: (B * H/ws * W/ws, ws * ws, C), windows in row-major order per image.
    """
    B, H, W, C = x.shape
    ws = window_size
    x = x.view(B, H // ws, ws, W // ws, ws, C)  # (B, nH, ws, nW, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, C)  # (B*nH*nW, ws*ws, C)


def window_reverse(windows: torch.Tensor, window_size: int, H: int, W: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`.

    Args:
        windows (Tensor): (B * H/ws * W/ws, ws * ws, C).
        window_size (int): side of the square window, ws.
        H (int): height of the (padded) map.
        W (int): width of the (padded) map.

    Returns:
        Tensor: (B, H, W, C).
    """
    ws = window_size
    C = windows.shape[-1]
    x = windows.view(-1, H // ws, W // ws, ws, ws, C)  # (B, nH, nW, ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, H, W, C)  # (B, H, W, C)


def relative_position_index(window_size: int, table_window: Optional[int] = None,
                            device: Optional[torch.device] = None) -> torch.Tensor:
    """Swin's index of each (query, key) pair of a window into the relative position bias table.

    The table holds one entry per relative offset (dh, dw) of a ``table_window`` window, i.e.
    (2 * table_window - 1) ** 2 rows, row ``(dh + T - 1) * (2T - 1) + (dw + T - 1)``. A smaller
    window (the small-map rule) reads the central entries of the same table.

    Args:
        window_size (int): side of the window the index is for, ws.
        table_window (int, optional): side of the window the table was made for, T >= ws.
            Defaults to None: ws.
        device (torch.device, optional): where to build it. Defaults to None: the CPU.

    Returns:
        Tensor: (ws * ws, ws * ws) int64.
    """
    T = table_window or window_size
    if window_size > T:
        raise ValueError(f'window {window_size} is larger than the bias table\'s window {T}')
    side = torch.arange(window_size, device=device)
    coords = torch.stack(torch.meshgrid(side, side, indexing='ij')).flatten(1)  # (2, ws*ws)
    rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N): offset query - key
    return (rel[0] + T - 1) * (2 * T - 1) + (rel[1] + T - 1)  # (N, N)


def shift_window_mask(height: int, width: int, window_size: int, shift: int,
                      device: torch.device = torch.device('cpu')) -> torch.Tensor:
    """Additive mask that keeps a shifted window from mixing tokens across the wrap seam.

    After ``torch.roll(x, (shift, shift), (1, 2))`` some windows hold tokens that were far apart
    before the roll. A token may attend to another only if, along each axis, both did or both did
    not wrap around. This equals Swin's 3x3-region mask for ``shift < 0`` and PSLT's mirrored mask
    (regions [0, s), [s, ws), [ws, H)) for ``shift > 0``. Built on ``device`` (no host copy);
    :class:`ShiftMaskCache` keeps one per module.

    Args:
        height (int): height of the padded map, a multiple of ``window_size``.
        width (int): width of the padded map, a multiple of ``window_size``.
        window_size (int): window side ws.
        shift (int): the signed roll applied to the map, 0 < |shift| < ws.
        device (torch.device): where the mask lives. Defaults to the CPU.

    Returns:
        Tensor: (nW, ws * ws, ws * ws) float: 0 where attention is allowed, ``MASK_FILL``
        elsewhere.
    """
    def wrapped(n: int) -> torch.Tensor:
        source = torch.arange(n, device=device) - shift  # where each token was before the roll
        return ((source < 0) | (source >= n)).long()  # (n,)

    # a cached tensor must stay usable by autograd even if first built under inference_mode
    with torch.inference_mode(False):
        # one region label per token: (wrapped along H, wrapped along W)
        region = (2 * wrapped(height)[:, None] + wrapped(width)[None, :]).float()  # (H, W)
        region = window_partition(region.view(1, height, width, 1), window_size).squeeze(-1)
        # region: (nW, N)
        different = region[:, None, :] != region[:, :, None]  # (nW, N, N)
        return torch.zeros(different.shape, device=device).masked_fill_(different, MASK_FILL)


class ShiftMaskCache:
    """The shift mask of the last size asked for, kept by the module that uses it.

    A module-level cache would keep masks of every size on every device alive beyond the
    models that made them; a detector sees one size per batch, so one entry per module is
    enough. Tracers and compilers get the mask built in their graph.
    """

    def __init__(self) -> None:
        self.key: Optional[tuple] = None
        self.mask: Optional[torch.Tensor] = None

    def __call__(self, height: int, width: int, window_size: int, shift: int,
                 device: torch.device) -> torch.Tensor:
        if records_graph():
            return shift_window_mask(height, width, window_size, shift, device)
        key = (height, width, window_size, shift, device)
        if key != self.key:
            self.mask = shift_window_mask(*key)
            self.key = key
        return self.mask

    def __deepcopy__(self, memo) -> 'ShiftMaskCache':
        return ShiftMaskCache()  # a copy (e.g. an EMA model) builds its own


def gather_relative_bias(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The relative-position bias B of a window's token pairs from its table.

    Args:
        table (Tensor): ((2T - 1)^2, h), one row per relative offset.
        index (Tensor): (N, N), the row of each (query, key) pair.

    Returns:
        Tensor: (h, N, N).
    """
    N = index.shape[0]
    return table[index.reshape(-1)].view(N, N, -1).permute(2, 0, 1)


def attend_windows(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                   mask: Optional[torch.Tensor], scale: float, dropout_p: float = 0.,
                   fused: bool = True) -> torch.Tensor:
    """``softmax(q k^T * scale + B + M) v`` per window and head.

    The bias B is shared by all windows; the shift mask M differs between the nW windows of an
    image, so with a mask the heads of the nW windows of an image are viewed as nW * h heads of
    one batch entry and B + M is one (nW * h, N, N) additive term.

    Args:
        q, k, v (Tensor): (B * nW, h, N, d).
        bias (Tensor): B, (h, N, N).
        mask (Tensor, optional): M, (nW, N, N), or None.
        scale (float): the factor on the logits.
        dropout_p (float): dropout on the attention weights. Defaults to 0.
        fused (bool): one ``F.scaled_dot_product_attention`` call. Defaults to True.

    Returns:
        Tensor: (B * nW, N, h * d), heads concatenated.
    """
    Bw, h, N, d = q.shape
    if mask is not None:
        g = mask.shape[0]
        bias = (bias.unsqueeze(0) + mask.unsqueeze(1)).reshape(g * h, N, N)  # (nW*h, N, N)
        q, k, v = (t.reshape(Bw // g, g * h, N, d) for t in (q, k, v))
    out = scaled_dot_product(q, k, v, scale, bias=bias, dropout_p=dropout_p, fused=fused)
    return out.reshape(Bw, h, N, d).transpose(1, 2).reshape(Bw, N, h * d)


class WindowMSA(nn.Module):
    """Multi-head self-attention within windows, with Swin's relative position bias.

    Args:
        embed_dims (int): channels C of the input and output.
        num_heads (int): number of heads h; head_dims = C / h.
        window_size (int): window side ws the bias table is made for.
        qkv_bias (bool): bias in the q, k (, v) projection. Defaults to True.
        qk_scale (float, optional): factor the logits are **multiplied** by.
            Defaults to head_dims ** -0.5.
        attn_drop (float): dropout on the attention weights (training only). Defaults to 0.
        proj_drop (float): dropout after the output projection. Defaults to 0.

    q, k, v come from one Linear C -> 3C (``qkv``); :class:`ExternalValueWindowMSA` takes v from
    the caller instead.
    """

    fused_attn: Final[bool]

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.,
                 proj_drop: float = 0.) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        self.fused_attn = use_fused_attn()
        self._make_input_projection(embed_dims, qkv_bias)
        self.attn_drop = attn_drop
        self.proj = Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads))  # ((2ws-1)^2, h)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)
        # static, rebuilt from window_size: not part of the state dict
        self.register_buffer('relative_position_index', relative_position_index(window_size),
                             persistent=False)
        self._small_index: Dict[int, torch.Tensor] = {}
        self._register_load_state_dict_pre_hook(self._resize_bias_table_hook)

    def _resize_bias_table_hook(self, state_dict, prefix, *args, **kwargs) -> None:
        """A checkpoint's bias table made for another window (fine-tuning at another window
        size) is resized bicubically over the (2ws-1)^2 offsets, with a log line."""
        key = prefix + 'relative_position_bias_table'
        table = state_dict.get(key)
        own = self.relative_position_bias_table
        if table is None or table.shape == own.shape or table.dim() != 2 \
                or table.shape[1] != own.shape[1]:
            return  # absent, fitting, or of another head count: the shape check reports it
        src = math.isqrt(table.shape[0])
        if src * src != table.shape[0]:
            return
        dst = 2 * self.window_size - 1
        grid = table.T.reshape(1, -1, src, src).float()  # (1, h, 2W-1, 2W-1)
        resized = F.interpolate(grid, size=(dst, dst), mode='bicubic', align_corners=False)
        state_dict[key] = resized.reshape(-1, dst * dst).T.to(table.dtype)  # ((2ws-1)^2, h)
        from mmengine.logging import print_log
        print_log(f'{prefix}relative_position_bias_table resized from {src}x{src} to '
                  f'{dst}x{dst} offsets (window {self.window_size})', logger='current')

    def _make_input_projection(self, embed_dims: int, bias: bool) -> None:
        self.qkv = Linear(embed_dims, 3 * embed_dims, bias=bias)

    def project(self, x: torch.Tensor, v: Optional[torch.Tensor]
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Windows x (Bw, N, C) -> per-head q, k, v, each (Bw, h, N, hd).

        Args:
            x (Tensor): windows (Bw, N, C).
            v (Tensor, optional): must be None: :class:`WindowMSA` computes its own value
                (:class:`ExternalValueWindowMSA` takes it here, (Bw, N, C)).

        Returns:
            tuple[Tensor]: q, k, v, each (Bw, h, N, hd).
        """
        if v is not None:
            raise ValueError(f'{type(self).__name__} computes its own value; build the '
                             'attention with window_msa=ExternalValueWindowMSA to pass v')
        Bw, N, C = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(Bw, N, 3, h, C // h).permute(2, 0, 3, 1, 4)
        return q, k, v

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'window_size={self.window_size}, fused_attn={self.fused_attn}')

    def relative_position_bias(self, window_size: int) -> torch.Tensor:
        """The bias B for windows of side ``window_size`` (<= the table's): (h, N, N)."""
        if window_size == self.window_size:
            index = self.relative_position_index
        else:  # a shrunk window on a small map: cached per size, moved with the module
            index = self._small_index.get(window_size)
            if index is None or index.device != self.relative_position_bias_table.device:
                with torch.inference_mode(False):  # indexing saves the index for backward
                    index = relative_position_index(
                        window_size, self.window_size, self.relative_position_bias_table.device)
                self._small_index[window_size] = index
        return gather_relative_bias(self.relative_position_bias_table, index)  # (h, N, N)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                v: Optional[torch.Tensor] = None,
                window_size: Optional[int] = None) -> torch.Tensor:
        """
        Args:
            x (Tensor): windows (B * nW, N, C), N = ws * ws.
            mask (Tensor, optional): additive shift mask (nW, N, N), the same for every image.
                Defaults to None: no mask.
            v (Tensor, optional): the value windows (B * nW, N, C) for
                :class:`ExternalValueWindowMSA`; None otherwise. Defaults to None.
            window_size (int, optional): ws of these windows if smaller than the table's
                (small maps). Defaults to None: the table's window.

        Returns:
            Tensor: (B * nW, N, C).
        """
        q, k, v = self.project(x, v)  # 3 x (Bw, h, N, hd)
        bias = self.relative_position_bias(window_size or self.window_size)  # (h, N, N)
        out = attend_windows(q, k, v, bias, mask, self.scale,
                             dropout_p=self.attn_drop if self.training else 0.,
                             fused=self.fused_attn)  # (Bw, N, C)
        return self.proj_drop(self.proj(out))


class ExternalValueWindowMSA(WindowMSA):
    """:class:`WindowMSA` whose value comes from the caller: only q, k are projected from the
    input (Linear C -> 2C, ``qk``). PSLT's ladder branches attend over the previous branch's
    output this way.
    """

    def _make_input_projection(self, embed_dims: int, bias: bool) -> None:
        self.qk = Linear(embed_dims, 2 * embed_dims, bias=bias)

    def project(self, x: torch.Tensor, v: Optional[torch.Tensor]
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if v is None:
            raise ValueError(f'{type(self).__name__} takes its value from outside: pass v')
        Bw, N, C = x.shape
        h = self.num_heads
        q, k = self.qk(x).view(Bw, N, 2, h, C // h).permute(2, 0, 3, 1, 4)  # 2 x (Bw, h, N, hd)
        return q, k, v.reshape(Bw, N, h, C // h).transpose(1, 2)  # v: (Bw, h, N, hd)


class ShiftWindowMSA(nn.Module):
    """Window attention on a map: pad, cyclic shift, mask, partition, attend, and undo all that.

    Args:
        embed_dims (int): channels C.
        num_heads (int): number of heads.
        window_size (int): window side ws.
        shift_size (int): the signed cyclic shift, ``torch.roll(x, (s, s))`` before attention
            and ``-s`` after. Swin's shifted blocks use ``-(ws // 2)``, PSLT's third branch
            ``+(ws // 2)``; 0 = no shift. |shift_size| < window_size. Defaults to 0.
        shrink_small_map (bool): the Swin/PSLT small-map rule: when min(H, W) <= ws, use one
            window of side min(H, W) and no shift. When False, small maps are padded to a whole
            window. Defaults to True.
        qkv_bias (bool): see :class:`WindowMSA`. Defaults to True.
        qk_scale (float, optional): see :class:`WindowMSA`. Defaults to None: head_dims ** -0.5.
        attn_drop (float): see :class:`WindowMSA`. Defaults to 0.
        proj_drop (float): see :class:`WindowMSA`. Defaults to 0.
        window_msa (type): the attention core class, :class:`WindowMSA` or
            :class:`ExternalValueWindowMSA` (value from the caller). Defaults to
            :class:`WindowMSA`.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, shift_size: int = 0,
                 shrink_small_map: bool = True, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.,
                 proj_drop: float = 0., window_msa: Type[WindowMSA] = WindowMSA) -> None:
        super().__init__()
        if not abs(shift_size) < window_size:
            raise ValueError(f'|shift_size| must be smaller than window_size {window_size}, '
                             f'got {shift_size}')
        self.window_size = window_size
        self.shift_size = shift_size
        self.shrink_small_map = shrink_small_map
        self.w_msa = window_msa(embed_dims, num_heads, window_size, qkv_bias=qkv_bias,
                                qk_scale=qk_scale, attn_drop=attn_drop, proj_drop=proj_drop)
        self.shift_mask = ShiftMaskCache()

    def extra_repr(self) -> str:
        return f'window_size={self.window_size}, shift_size={self.shift_size}'

    def window_and_shift(self, H: int, W: int) -> Tuple[int, int]:
        """The window side and shift used on an H x W map."""
        if self.shrink_small_map and min(H, W) <= self.window_size:
            return min(H, W), 0  # one window covers the short side: shifting would only wrap
        return self.window_size, self.shift_size

    def forward(self, x: torch.Tensor, v: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            x (Tensor): (B, H, W, C).
            v (Tensor, optional): (B, H, W, C), the value map for an
                :class:`ExternalValueWindowMSA` core. Defaults to None.

        Returns:
            Tensor: (B, H, W, C).
        """
        B, H, W, C = x.shape
        ws, shift = self.window_and_shift(H, W)

        # pad right/bottom to whole windows (the pad is not masked, as in Swin for detection)
        maps = [pad_to_multiple(t, ws, dims=(-3, -2)) for t in ([x] if v is None else [x, v])]
        Hp, Wp = maps[0].shape[1:3]  # (B, Hp, Wp, C) each

        mask = None
        if shift:
            maps = [torch.roll(t, shifts=(shift, shift), dims=(1, 2)) for t in maps]
            mask = self.shift_mask(Hp, Wp, ws, shift, x.device)  # (nW, N, N)

        windows = [window_partition(t, ws) for t in maps]  # (B*nW, ws*ws, C) each
        out = self.w_msa(windows[0], mask=mask, v=windows[1] if v is not None else None,
                         window_size=ws)
        out = window_reverse(out, ws, Hp, Wp)  # (B, Hp, Wp, C)

        if shift:
            out = torch.roll(out, shifts=(-shift, -shift), dims=(1, 2))
        if (Hp, Wp) != (H, W) or is_tracing():  # (traced: the crop follows the input's size)
            out = out[:, :H, :W, :].contiguous()
        return out
