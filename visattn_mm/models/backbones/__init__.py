from .bvit import BViT
from .dense_vit import DenseDeiT
from .fcvit import FCViT
from .pslt import PSLT

__all__ = ['BViT', 'DenseDeiT', 'FCViT', 'PSLT']
