from .activation import GELU, gelu, is_channels_last
from .attention import (QKV, BroadAttentionSum, DenseValueBank, MultiheadAttention,
                        broad_attention, dense_value_mix, scaled_dot_product, use_fused_attn)
from .depthwise import DepthwiseConv2d
from .drop_path import DropPath
from .fused_inference import (ConvGeluNorm, Linear, conv_gelu, ffn_residual, in_image_chunks,
                              linear_act, run_conv_units)
from .tracing import is_tracing, resize_pos_embed
from .window_attention import (ExternalValueWindowMSA, ShiftMaskCache, ShiftWindowMSA, WindowMSA,
                               attend_windows, gather_relative_bias, relative_position_index,
                               shift_window_mask, window_partition, window_reverse)

__all__ = ['GELU', 'QKV', 'BroadAttentionSum', 'ConvGeluNorm', 'DenseValueBank',
           'DepthwiseConv2d', 'DropPath', 'ExternalValueWindowMSA', 'Linear',
           'MultiheadAttention', 'ShiftMaskCache', 'ShiftWindowMSA', 'WindowMSA',
           'attend_windows', 'broad_attention', 'conv_gelu', 'dense_value_mix', 'ffn_residual',
           'gather_relative_bias', 'gelu', 'in_image_chunks', 'is_channels_last', 'is_tracing',
           'linear_act', 'relative_position_index', 'resize_pos_embed', 'run_conv_units',
           'scaled_dot_product', 'shift_window_mask', 'use_fused_attn', 'window_partition',
           'window_reverse']
