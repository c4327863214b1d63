from .fcvit import FCViT
from .pslt import PSLT

__all__ = ['FCViT', 'PSLT']
