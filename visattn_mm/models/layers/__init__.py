from .attention import (QKV, DenseValueBank, MultiheadAttention, QKVBank, broad_attention,
                        dense_value_mix, joined_broad_attention, scaled_dot_product,
                        use_fused_attn)
from .tracing import is_tracing, resize_pos_embed
from .window_attention import (ExternalValueWindowMSA, ShiftWindowMSA, WindowMSA,
                               relative_position_index, shift_window_mask, window_partition,
                               window_reverse)

__all__ = ['QKV', 'DenseValueBank', 'ExternalValueWindowMSA', 'MultiheadAttention', 'QKVBank',
           'ShiftWindowMSA', 'WindowMSA', 'broad_attention', 'dense_value_mix', 'is_tracing',
           'joined_broad_attention', 'relative_position_index', 'resize_pos_embed',
           'scaled_dot_product', 'shift_window_mask', 'use_fused_attn', 'window_partition',
           'window_reverse']
