"""Part 2 of the GPU check: images/s of each family's ImageNet classifier, inference and a
training step, timed in turns with mmpretrain's DeiT-Ti and Swin-T."""
import copy
import math
import os.path as osp
import statistics
import time
import traceback
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .common import autocast, init_quietly, log, md_table, sync

# part 2: the anchors (mmpretrain's own models, as in its deit-tiny and swin-tiny configs) and
# each family's ImageNet config
ANCHORS: Dict[str, dict] = {
    'DeiT-Ti': dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=224, patch_size=16,
                      drop_path_rate=0.1),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=192,
                  loss=dict(type='CrossEntropyLoss'))),
    'Swin-T': dict(
        type='ImageClassifier',
        backbone=dict(type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.2),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=768,
                  loss=dict(type='CrossEntropyLoss'))),
}
CLASSIFIER_CONFIGS: Dict[str, str] = {
    'BViT-Ti': 'configs/bvit/bvit-tiny_4xb256_in1k.py',
    'BroadSwin-T': 'configs/bvit/broadswin-tiny_16xb64_in1k.py',
    'BroadT2T-ViT-14': 'configs/bvit/broadt2t-vit-t-14_8xb64_in1k.py',
    'DenseDeiT-Ti': 'configs/dense/dense-deit-tiny_4xb256_in1k.py',
    'DenseSwin-T': 'configs/dense/dense-swin-tiny_16xb64_in1k.py',
    'PSLT-base': 'configs/pslt/pslt-base_8xb128_in1k.py',
    'FCViT-tiny': 'configs/fcvit/fcvit-tiny_8xb128_in1k.py',
}


def build_classifier(name: str, size: int, checkout: str) -> torch.nn.Module:
    """The anchor ``name`` or the model of a family's ImageNet config, initialised as for
    training (no checkpoint is loaded: only the speed is measured). Below 224 px (the CPU's
    --quick run) the Swin-T anchor pads maps smaller than its window instead of refusing them.
    ``checkout``: the folder whose configs/ holds :data:`CLASSIFIER_CONFIGS`."""
    from visattn_mm.apis.config import build_model_in_scope, load_config
    if name in ANCHORS:
        import mmpretrain.models  # noqa: F401
        model_cfg, scope = copy.deepcopy(ANCHORS[name]), 'mmpretrain'
        if model_cfg['backbone']['type'] == 'SwinTransformer' and size < 224:
            model_cfg['backbone']['pad_small_map'] = True
    else:
        cfg = load_config(osp.join(checkout, CLASSIFIER_CONFIGS[name]))
        model_cfg, scope = copy.deepcopy(cfg.model), cfg.get('default_scope', 'mmpretrain')
        model_cfg.pop('pretrained', None)
        for node in (model_cfg, model_cfg.backbone):
            if 'Pretrained' in str(node.get('init_cfg')):
                node.pop('init_cfg')
    model = build_model_in_scope(model_cfg, scope)
    init_quietly(model)
    return model


def set_memory_format(model: torch.nn.Module, channels_last: bool) -> None:
    """Weights (and the inputs the model is given) in one memory format. ``model.to`` alone is
    not enough for PSLT and FCViT: with ``channels_last=None`` (their default) they pick the
    format per device whenever they are moved, so the choice is fixed on them explicitly."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    for module in model.modules():
        if hasattr(module, '_use_channels_last'):  # visattn_mm backbones
            module._use_channels_last(channels_last)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def time_classifiers(device: torch.device, batch: int, size: int, rounds: int, iters: int,
                     warmup: int, names: Optional[Sequence[str]] = None, *, checkout: str
                     ) -> Tuple[str, bool]:
    """Part 2: images/s of inference and of a training step, the models timed in turns
    (``checkout``: as for :func:`build_classifier`)."""
    import visattn_mm  # noqa: F401
    names = list(names or list(ANCHORS) + list(CLASSIFIER_CONFIGS))
    anchors = [a for a in ANCHORS if a in names]
    blank = ['-'] * (1 + 2 * len(anchors))  # the cells after a failure's message
    models, rows, all_ok = {}, [], True
    for name in names:
        try:
            torch.manual_seed(0)
            models[name] = build_classifier(name, size, checkout).to(device)
        except Exception as err:  # noqa: BLE001
            traceback.print_exc()
            rows.append([name, '-', '-', f'FAIL (build): {err!r}'[:200]] + blank)
            all_ok = False
    amp = 'fp16' if device.type == 'cuda' else 'bf16'
    gen = torch.Generator().manual_seed(0)
    x_cpu = torch.randn(batch, 3, size, size, generator=gen)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # as training runs set it; the warm-up absorbs it
    try:
        for channels_last in (False, True):
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            x = x_cpu.to(device).contiguous(memory_format=fmt)
            for precision in ('fp32', amp):
                log(f'  {"channels-last" if channels_last else "NCHW"} {precision}')
                steps = {}
                for name, model in list(models.items()):
                    try:
                        set_memory_format(model, channels_last)
                        steps[name] = _make_steps(model, x, device, precision)
                        for _ in range(warmup):
                            steps[name][0]()
                            steps[name][1]()
                    except Exception as err:  # noqa: BLE001
                        rows.append(_failed_row(name, channels_last, precision, err, device)
                                    + blank)
                        all_ok = False
                        steps.pop(name, None)
                # rounds of A B C ...: each model's inference, then its training step
                speed = {n: ([], []) for n in steps}
                for _ in range(rounds):
                    for name in list(steps):
                        try:
                            for kind, fn in enumerate(steps[name]):
                                sync(device)
                                t0 = time.perf_counter()
                                for _ in range(iters):
                                    fn()
                                sync(device)
                                speed[name][kind].append(batch * iters /
                                                         (time.perf_counter() - t0))
                        except Exception as err:  # noqa: BLE001  (e.g. out of memory)
                            rows.append(_failed_row(name, channels_last, precision, err,
                                                    device) + blank)
                            all_ok = False
                            del steps[name], speed[name]
                for name in steps:
                    row = [name, 'channels-last' if channels_last else 'NCHW', precision]
                    for kind in (0, 1):
                        row.append(f'{_median(speed[name][kind]):.1f}')
                        for anchor in anchors:
                            if anchor not in speed:
                                row.append('-')
                                continue
                            ratios = [a / b for a, b in zip(speed[name][kind],
                                                            speed[anchor][kind])]
                            row.append(f'{_median(ratios):.2f}')
                    rows.append(row)
                if device.type == 'cuda':
                    torch.cuda.empty_cache()
    finally:
        torch.backends.cudnn.benchmark = benchmark
    vs = [f'x {a}' for a in anchors]
    headers = ['model', 'layout', 'precision', 'inference img/s', *vs, 'train step img/s', *vs]
    if device.type == 'cuda':
        tf32 = (f'fp32 with PyTorch\'s TF32 settings as found (matmul '
                f'{torch.backends.cuda.matmul.allow_tf32}, cuDNN '
                f'{torch.backends.cudnn.allow_tf32}), AMP = autocast fp16 + GradScaler')
    else:
        tf32 = 'AMP = autocast bf16'
    title = (f'### 2. Speed on {device}: batch {batch} at {size}x{size}, median of {rounds} '
             f'interleaved rounds of {iters} steps after {warmup} warm-up steps; '
             f'x anchor = images/s ratio to the anchor in the same rounds (higher is faster); '
             f'{tf32}; cudnn.benchmark on; training step = forward, cross-entropy on random '
             'labels, backward, SGD (momentum 0.9)')
    return title + '\n\n' + md_table(headers, rows), all_ok


def _failed_row(name: str, channels_last: bool, precision: str, err: Exception,
                device: torch.device) -> list:
    """Print the traceback; the first cells of the table row of a model that failed."""
    traceback.print_exc()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return [name, 'channels-last' if channels_last else 'NCHW', precision,
            f'FAIL: {err!r}'[:200]]


def _make_steps(model: torch.nn.Module, x: torch.Tensor, device: torch.device,
                precision: str) -> Tuple[Callable[[], None], Callable[[], None]]:
    """(inference step, training step) closures for one model, input and precision."""
    optim = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    from visattn_mm.compat import grad_scaler  # torch.amp.GradScaler needs torch >= 2.3
    scaler = grad_scaler('cuda') if precision == 'fp16' else None
    labels = {}

    def infer() -> None:
        model.eval()
        with torch.no_grad(), autocast(device, precision):
            model(x, mode='tensor')

    def train() -> None:
        model.train()
        optim.zero_grad(set_to_none=True)
        with autocast(device, precision):
            logits = model(x, mode='tensor')
        if 'y' not in labels:
            labels['y'] = torch.randint(0, logits.shape[-1], (x.shape[0],), device=device,
                                        generator=torch.Generator(device).manual_seed(0))
        loss = F.cross_entropy(logits.float(), labels['y'])
        if scaler is None:
            loss.backward()
            optim.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optim)
            scaler.update()

    return infer, train
