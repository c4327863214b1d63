"""visattn_mm: vision-attention backbones (BViT, Dense attention, PSLT, FCViT) for OpenMMLab."""
from .version import __version__
from .utils.checkpoint import allow_runner_checkpoints

# Runner checkpoints (resume, load_from, `mim test --checkpoint`) must load under torch's
# weights_only default; configs import this package before the Runner loads anything.
allow_runner_checkpoints()

from . import datasets, evaluation, models  # noqa: E402,F401  (register everything)

__all__ = ['__version__']
