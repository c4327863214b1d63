"""The parts of the GPU check that ``tools/gpu_check.py`` runs (docs/gpu.md): numerics against
the CPU (:mod:`.numerics`), classifier speed beside mmpretrain's anchors (:mod:`.speed`) and short
``tools/train.py --amp`` runs (:mod:`.training`). Each part returns its markdown table and
whether every row passed; the command line (options, device checks, the summary) stays in the
tool.
"""
from .numerics import BACKBONES, TOLERANCES, TRAIN_TOLERANCES, check_numerics
from .speed import ANCHORS, CLASSIFIER_CONFIGS, build_classifier, time_classifiers
from .training import TRAIN_RUNS, train_runs

__all__ = [
    'ANCHORS', 'BACKBONES', 'CLASSIFIER_CONFIGS', 'TOLERANCES', 'TRAIN_RUNS', 'TRAIN_TOLERANCES',
    'build_classifier', 'check_numerics', 'time_classifiers', 'train_runs'
]
