from .activation import GELU, gelu, is_channels_last
from .attention import (QKV, BroadAttention, BroadInputs, DenseValues, DenseValueStore,
                        MultiheadAttention, broad_attention, dense_value_mix, scaled_dot_product,
                        use_fused_attn)
from .drop_path import DropPath
from .tracing import is_tracing, pad_to_multiple, records_graph, resize_pos_embed
from .units import ConvGelu, ConvGeluNorm, Linear
from .window_attention import (ExternalValueWindowMSA, ShiftMaskCache, ShiftWindowMSA, WindowMSA,
                               attend_windows, gather_relative_bias, relative_position_index,
                               shift_window_mask, window_partition, window_reverse)

__all__ = ['GELU', 'QKV', 'BroadAttention', 'BroadInputs', 'ConvGelu', 'ConvGeluNorm',
           'DenseValueStore', 'DenseValues', 'DropPath', 'ExternalValueWindowMSA', 'Linear',
           'MultiheadAttention', 'ShiftMaskCache', 'ShiftWindowMSA', 'WindowMSA',
           'attend_windows', 'broad_attention', 'dense_value_mix', 'gather_relative_bias', 'gelu',
           'is_channels_last', 'is_tracing', 'pad_to_multiple', 'records_graph',
           'relative_position_index', 'resize_pos_embed', 'scaled_dot_product', 'shift_window_mask', 'use_fused_attn',
           'window_partition', 'window_reverse']
