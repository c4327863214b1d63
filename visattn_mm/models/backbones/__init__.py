from .broad_t2t import BroadT2TViT
from .bvit import BViT
from .cross_layer_swin import BroadSwinTransformer, DenseSwinTransformer
from .dense_vit import DenseDeiT
from .fcvit import FCViT
from .pslt import PSLT

__all__ = ['BViT', 'DenseDeiT', 'FCViT', 'PSLT']
__all__ += ['BroadSwinTransformer', 'BroadT2TViT', 'DenseSwinTransformer']
