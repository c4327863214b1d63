"""The package's own registries, children of mmengine's roots.

``type='visattn_mm.X'`` resolves from mmdet, mmseg and mmpretrain configs alike: mmengine imports
``visattn_mm.registry``, finds the child with scope ``visattn_mm`` and imports its ``locations``.
Inside the package, build sub-modules directly or with ``visattn_mm.``-scoped names.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='visattn_mm',
                  locations=['visattn_mm.models'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='visattn_mm',
                   locations=['visattn_mm.evaluation'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='visattn_mm',
                    locations=['visattn_mm.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='visattn_mm',
                      locations=['visattn_mm.datasets'])
# CPU training pieces (visattn_mm.apis.cpu): DDP and bf16 AMP wrappers for CPU-only machines
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope='visattn_mm',
                          locations=['visattn_mm.apis.cpu'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='visattn_mm',
                          locations=['visattn_mm.apis.cpu'])
