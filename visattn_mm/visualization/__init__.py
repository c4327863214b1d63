"""Pictures of what the backbones attend to (see :mod:`.attention_maps`)."""
from .attention_maps import Picture, check_kind, compute_picture, kinds_of, render
from .config_model import (build_model_from_config, build_model_in_scope, config_test_size,
                           get_backbone, load_config, load_image, normalisation,
                           quiet_mmengine, to_tensor)
from .drawing import (Panel, colorize, grid_size, matrix_heatmaps, overlay, panel_factor,
                      panel_grid, save_matrix_heatmaps, save_panels, stack, text_strip, write_png)
from .mechanisms import (ALL_KINDS, FAMILY_KINDS, broad_cls_attention, broad_swin_attention,
                         dense_mix_weights, family_of, fcvit_context_maps, pslt_ladder_attention)

__all__ = [
    'ALL_KINDS', 'FAMILY_KINDS', 'Panel', 'Picture', 'broad_cls_attention',
    'broad_swin_attention', 'build_model_from_config', 'build_model_in_scope', 'check_kind',
    'colorize', 'compute_picture', 'config_test_size', 'dense_mix_weights', 'family_of',
    'fcvit_context_maps', 'get_backbone', 'grid_size', 'kinds_of', 'load_config', 'load_image',
    'matrix_heatmaps', 'normalisation', 'overlay', 'panel_factor', 'panel_grid',
    'pslt_ladder_attention', 'quiet_mmengine', 'render', 'save_matrix_heatmaps', 'save_panels',
    'stack', 'text_strip', 'to_tensor', 'write_png'
]
