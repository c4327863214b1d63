"""`type='visattn_mm.X'` resolves from mmdet, mmseg and mmpretrain registries alike."""
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

from visattn_mm.registry import DATASETS, METRICS, MODELS


def test_child_registries():
    import mmengine.registry as root
    for child, parent in ((MODELS, root.MODELS), (METRICS, root.METRICS),
                          (DATASETS, root.DATASETS)):
        assert child.scope == 'visattn_mm'
        assert child.parent is parent
        assert parent._children['visattn_mm'] is child


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_scoped_names_resolve_from_each_toolbox(scope):
    import importlib
    registry = importlib.import_module(f'{scope}.registry').MODELS
    assert {'PSLT', 'FCViT'} <= set(MODELS.module_dict)
    with DefaultScope.overwrite_default_scope(scope):
        init_default_scope(scope)
        for name in MODELS.module_dict:
            assert registry.get(f'visattn_mm.{name}') is MODELS.get(name), name
        backbone = registry.build(dict(type='visattn_mm.PSLT', arch='tiny'))
        assert type(backbone) is MODELS.get('PSLT')
        with pytest.raises(KeyError):
            registry.build(dict(type='visattn_mm.NoSuchBackbone'))


def test_metric_resolves_from_mmdet():
    from mmdet.registry import METRICS as MMDET_METRICS
    with DefaultScope.overwrite_default_scope('mmdet'):
        init_default_scope('mmdet')
        metric = MMDET_METRICS.build(dict(type='visattn_mm.Market1501Metric'))
    assert type(metric) is METRICS.get('Market1501Metric')


def test_custom_imports_in_config(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text("custom_imports = dict(imports=['visattn_mm'], "
                        "allow_failed_imports=False)\nx = 1\n")
    assert Config.fromfile(str(cfg_file)).x == 1
