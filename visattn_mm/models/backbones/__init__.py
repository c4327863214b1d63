from .fcvit import FCViT

__all__ = ['FCViT']
