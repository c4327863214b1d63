from .window_attention import (ShiftWindowMSA, WindowMSA, relative_position_index,
                               shift_window_mask, use_fused_attn, window_partition,
                               window_reverse)

__all__ = ['ShiftWindowMSA', 'WindowMSA', 'relative_position_index', 'shift_window_mask',
           'use_fused_attn', 'window_partition', 'window_reverse']
