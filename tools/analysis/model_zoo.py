"""The model zoo table: size, compute and speed of every registered arch, beside the papers.

    python tools/analysis/model_zoo.py [--archs NAME ...] [--no-speed] [--quick]
        [--dense-macs] [--out FILE.md]

For every entry of :data:`ZOO` (each registered arch of each family, built from its ImageNet
config of configs/, i.e. the whole classifier with its 1000-class head):

* parameters: ``sum(p.numel())`` of the classifier, beside the exact count of the authors' model
  (/work/shared/research/targets.md) and the paper's rounded claim;
* GMACs for one 224x224 image, counted with ``torch.utils.flop_counter.FlopCounterMode`` (the
  counter targets.md uses; FLOPs / 2). FlopCounterMode has no formula for the CPU kernel of
  ``F.scaled_dot_product_attention``, so one is supplied here (2 * N * M * (d + d_v) FLOPs per
  head): the fused attention products **are** counted (mmengine's ``get_model_complexity_info``
  would skip them: its tracer has no SDPA handle). Every token in every layer is counted, as in
  the papers and the released code; where the classifier computes less (the ViT forms' last
  layer for the cls token alone) the note gives that count too;
* with ``--dense-macs``: GMACs of the dense-prediction backbone (all stages / the patch map) at
  800x1333;
* unless ``--no-speed``: forward images/s (batch 8, eval, no grad, fp32) and peak memory on this
  machine's CPU (peak resident set of a fresh process, reset after a first build has done the
  imports, minus the resident set before building; weights included) and on CUDA
  when available (``torch.cuda.max_memory_allocated``). ``--quick``: batch 1 and a short timing.

Writes the markdown tables to stdout and to ``--out``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from visattn_mm.utils.benchmarking import (  # noqa: E402
    count_gmacs, peak_rss_growth_mib, reset_peak_rss)


@dataclass
class ZooEntry:
    """One row of the zoo.

    Args:
        name (str): the row's name (``--archs`` selects by it).
        family (str): the backbone family.
        config (str): the ImageNet config, relative to the repository root.
        backbone (dict): backbone settings over the config's. Defaults to ``{}``.
        head (dict): head settings over the config's. Defaults to ``{}``.
        target_params (int, optional): exact parameters of the authors' model (targets.md).
        target_gmacs (float, optional): GMACs of the authors' model at 224 (targets.md).
        paper (str): the paper's / README's claim. Defaults to ``'-'``.
        note (str): a remark for the table. Defaults to ``''``.
    """
    name: str
    family: str
    config: str
    backbone: dict = field(default_factory=dict)
    head: dict = field(default_factory=dict)
    target_params: Optional[int] = None
    target_gmacs: Optional[float] = None
    paper: str = '-'
    note: str = ''


# FCViT's context similarity is one matmul over the channels-last map with the context laid out
# block-diagonally over the heads (see GlobalContext.similarity): h x the products of a per-head
# view, counted here, ~0.6-0.9 % of the MACs, for not copying the map to NCHW
FCVIT_NOTE = 'GMACs above target: the similarity as one block-diagonal matmul (8 x its products)'

# Reported numbers. Exact counts and GMACs: /work/shared/research/targets.md (the table "Exact
# size targets"). Paper claims: PSLT /work/shared/research/pslt.md section 6 "Results" ([ABS]);
# FCViT fcvit.md section 3 "Variants" (README params = count / 2^20, top-1 @224); BViT
# bvit_dense.md section 1.1 "Headline numbers"; Dense attention bvit_dense.md section 2.1
# "Abstract facts" (gains over DeiT / Swin; absolute numbers there are inferred); BViT on Swin and
# T2T-ViT: bvit_dense.md section 1.1 (">1%", no per-model number).
ZOO: List[ZooEntry] = [
    ZooEntry('pslt-tiny', 'PSLT', 'configs/pslt/pslt-tiny_8xb128_in1k.py',
             target_params=4_298_988, target_gmacs=0.900),
    ZooEntry('pslt-base', 'PSLT', 'configs/pslt/pslt-base_8xb128_in1k.py',
             target_params=9_257_302, target_gmacs=1.971, paper='9.2M, 1.9G, 79.9%'),
    ZooEntry('pslt-large', 'PSLT', 'configs/pslt/pslt-large_8xb128_in1k.py',
             target_params=16_099_312, target_gmacs=3.456),
    ZooEntry('fcvit-tiny', 'FCViT', 'configs/fcvit/fcvit-tiny_8xb128_in1k.py',
             target_params=4_784_752, target_gmacs=0.902, paper='4.6M (=count/2^20), 74.9%',
             note=FCVIT_NOTE),
    ZooEntry('fcvit-b12', 'FCViT', 'configs/fcvit/fcvit-b12_8xb128_in1k.py',
             target_params=14_701_832, target_gmacs=2.645, paper='14M, 80.9%',
             note=FCVIT_NOTE),
    ZooEntry('fcvit-b24', 'FCViT', 'configs/fcvit/fcvit-b24_8xb128_in1k.py',
             target_params=26_960_232, target_gmacs=5.059, paper='25.7M, 82.5%',
             note=FCVIT_NOTE),
    ZooEntry('fcvit-b48', 'FCViT', 'configs/fcvit/fcvit-b48_8xb128_in1k.py',
             target_params=51_477_032, target_gmacs=9.885, paper='49.1M, 83.6%',
             note=FCVIT_NOTE),
    ZooEntry('bvit-tiny', 'BViT', 'configs/bvit/bvit-tiny_4xb256_in1k.py',
             target_params=5_710_948, target_gmacs=0.301, paper='5.7M, 1.2G, 74.8/75.0%',
             note='targets: released 7x7/2 stem (+444 params, 49 tokens); config: paper form'),
    ZooEntry('bvit-small', 'BViT', 'configs/bvit/bvit-small_4xb256_in1k.py',
             target_params=22_037_284, paper='22.1M, 4.7G, 81.6%',
             note='targets: released stem (+444 params); released forward crashes'),
    ZooEntry('dense-deit-tiny', 'DenseDeiT', 'configs/dense/dense-deit-tiny_4xb256_in1k.py',
             target_params=5_120_824, target_gmacs=1.793, paper='DeiT-T +1.8% (2 heads)',
             note='targets GMACs: released code multiplies zero placeholders'),
    ZooEntry('dense-deit-tiny-1h', 'DenseDeiT', 'configs/dense/dense-deit-tiny-1h_4xb256_in1k.py',
             paper='head slimming (1 head)'),
    ZooEntry('dense-deit-tiny-3h', 'DenseDeiT', 'configs/dense/dense-deit-tiny-3h_4xb256_in1k.py',
             paper='head slimming (3 heads)'),
    ZooEntry('dense-deit-small', 'DenseDeiT', 'configs/dense/dense-deit-small_4xb256_in1k.py',
             target_params=22_036_984, target_gmacs=6.745, paper='DeiT-S +1.3%',
             note='targets GMACs: released code multiplies zero placeholders'),
    ZooEntry('dense-deit-small-3h', 'DenseDeiT',
             'configs/dense/dense-deit-small-3h_4xb256_in1k.py', paper='head slimming (3 heads)'),
    ZooEntry('dense-deit-small-4h', 'DenseDeiT',
             'configs/dense/dense-deit-small-4h_4xb256_in1k.py', paper='head slimming (4 heads)'),
    ZooEntry('dense-swin-tiny', 'DenseSwinTransformer',
             'configs/dense/dense-swin-tiny_16xb64_in1k.py', paper='Swin-T +0.7%',
             note='Swin-T: 28.3M, 4.5G (mmpretrain)'),
    ZooEntry('dense-swin-small', 'DenseSwinTransformer',
             'configs/dense/dense-swin-small_16xb64_in1k.py', paper='Swin-S +1.2%'),
    ZooEntry('broadswin-tiny', 'BroadSwinTransformer',
             'configs/bvit/broadswin-tiny_16xb64_in1k.py', paper='Swin-T +>1%',
             note='Swin-T: 28.3M, 4.5G (mmpretrain)'),
    ZooEntry('broadt2t-vit-14', 'BroadT2TViT', 'configs/bvit/broadt2t-vit-t-14_8xb64_in1k.py',
             paper='T2T-ViT-14 +>1%'),
]

# backbone settings that turn a classification backbone into its dense-prediction form
DENSE_FORM: Dict[str, dict] = {
    'PSLT': dict(out_indices=(0, 1, 2, 3), final_norm=False),
    'FCViT': dict(out_indices=(0, 1, 2, 3)),
    'BViT': dict(out_type='featmap'),
    'DenseDeiT': dict(out_type='featmap'),
    'DenseSwinTransformer': dict(out_indices=(0, 1, 2, 3)),
    'BroadSwinTransformer': dict(out_indices=(0, 1, 2, 3)),
    'BroadT2TViT': dict(out_type='featmap'),
}


# ---------------------------------------------------------------------------------- building
def build_classifier(entry: ZooEntry) -> torch.nn.Module:
    """The entry's whole classifier (its config's ``model``), eval mode."""
    from visattn_mm.apis.config import build_model_in_scope, load_config
    cfg = load_config(osp.join(ROOT, entry.config))
    model_cfg = cfg.model.copy()
    model_cfg.backbone.update(entry.backbone)
    if entry.head:
        model_cfg.head.update(entry.head)
    return build_model_in_scope(model_cfg, cfg.get('default_scope', 'mmpretrain')).eval()


def build_dense_backbone(entry: ZooEntry) -> torch.nn.Module:
    """The entry's backbone in its dense-prediction form (:data:`DENSE_FORM`), eval mode."""
    from visattn_mm.apis.config import build_model_in_scope, load_config
    cfg = load_config(osp.join(ROOT, entry.config))
    backbone = cfg.model.backbone.copy()
    backbone.update(entry.backbone)
    backbone.update(DENSE_FORM.get(entry.family, {}))
    return build_model_in_scope(backbone, cfg.get('default_scope', 'mmpretrain')).eval()


def classifier_forward(model: torch.nn.Module, x: torch.Tensor):
    """The classifier's logits (mmpretrain ``mode='tensor'``)."""
    return model(x, mode='tensor')


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------- speed
def time_forward(model: torch.nn.Module, x: torch.Tensor, seconds: float,
                 min_iters: int = 2) -> float:
    """Images per second of ``classifier_forward`` on ``x`` after one warm-up run."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.no_grad():
        classifier_forward(model, x)
        sync()
        iters, start = 0, time.perf_counter()
        while iters < min_iters or time.perf_counter() - start < seconds:
            classifier_forward(model, x)
            sync()
            iters += 1
        elapsed = time.perf_counter() - start
    return iters * x.shape[0] / elapsed


def measure_speed(entry: ZooEntry, device: str, batch: int, seconds: float) -> dict:
    """images/s and peak memory (MB) of the classifier on ``device``, in this process."""
    if device == 'cpu':  # a first build imports the toolboxes: keep that out of the peak
        del_model = build_classifier(entry)
        del del_model
        import gc
        gc.collect()
    before = reset_peak_rss()
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    model = build_classifier(entry).to(device)
    x = torch.randn(batch, 3, 224, 224, device=device)
    ips = time_forward(model, x, seconds)
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak = peak_rss_growth_mib(before)
    return dict(ips=ips, peak_mb=peak)


def measure_speed_subprocess(entry: ZooEntry, device: str, batch: int, seconds: float) -> dict:
    """:func:`measure_speed` in a fresh process, so that the peak memory is this model's."""
    spec = json.dumps(dict(entry.__dict__))
    cmd = [sys.executable, osp.abspath(__file__), '--_speed', spec, device, str(batch),
           str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f'timing {entry.name} on {device} failed:\n{out.stderr[-2000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- the table
def measure(entries: Sequence[ZooEntry], speed: bool = True, quick: bool = False,
            dense_macs: bool = False, progress: bool = True) -> List[dict]:
    """Measure every entry (see the module doc).

    Args:
        entries (Sequence[ZooEntry]): the rows.
        speed (bool): time the forward and measure peak memory. Defaults to True.
        quick (bool): batch 1 and short timings. Defaults to False.
        dense_macs (bool): also count the dense form's GMACs at 800x1333. Defaults to False.
        progress (bool): show a progress bar (tqdm) on stderr. Defaults to True.

    Returns:
        list[dict]: one dict per entry with ``params``, ``gmacs`` (every token in every layer),
        ``gmacs_as_run`` (what the classifier computes) and, as asked, ``dense_params``
        ``dense_gmacs``, ``cpu`` and ``cuda`` (``ips``, ``peak_mb``).
    """
    from tqdm import tqdm
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    batch, seconds = (1, 0.3) if quick else (8, 3.0)
    rows = []
    bar = tqdm(entries, desc='model zoo', unit='model', disable=not progress, file=sys.stderr)
    for entry in bar:
        bar.set_postfix_str(entry.name)
        model = build_classifier(entry)
        row = dict(entry=entry, params=num_params(model))
        x = torch.randn(1, 3, 224, 224)
        row['gmacs'] = row['gmacs_as_run'] = count_gmacs(classifier_forward, model, x)
        # the architecture's count, as papers and the released code have it: every token in
        # every layer (the ViT forms' classifiers run the last layer for the cls token alone)
        shortened = [m for m in model.modules() if getattr(m, 'cls_only_last_layer', False)]
        if shortened:
            for module in shortened:
                module.cls_only_last_layer = False
            row['gmacs'] = count_gmacs(classifier_forward, model, x)
        del model
        if dense_macs:
            backbone = build_dense_backbone(entry)
            row['dense_params'] = num_params(backbone)
            row['dense_gmacs'] = count_gmacs(backbone, torch.randn(1, 3, 800, 1333))
            del backbone
        if speed:
            for device in devices:
                row[device] = measure_speed_subprocess(entry, device, batch, seconds)
        rows.append(row)
    return rows


def _fmt(value, spec: str) -> str:
    return '-' if value is None else format(value, spec)


def markdown(rows: Sequence[dict], speed: bool, dense_macs: bool, quick: bool = False) -> str:
    """The markdown tables of :func:`measure`'s rows."""
    lines = ['## Size and compute (classifier with its 1000-class head, 224x224)', '',
             'GMACs: `torch.utils.flop_counter.FlopCounterMode` FLOPs / 2, fused attention '
             '(SDPA) products counted, every token in every layer. Targets: the authors\' '
             'released models (/work/shared/research/targets.md); paper: the papers\' / '
             'READMEs\' claims.', '']
    head = ['model', 'params', 'target params', 'GMACs@224', 'target GMACs', 'paper']
    if dense_macs:
        head += ['dense backbone params', 'dense GMACs@800x1333']
    head.append('note')
    align = ['---' if h in ('model', 'paper', 'note') else '---:' for h in head]
    lines += ['| ' + ' | '.join(head) + ' |', '|' + '|'.join(align) + '|']
    for row in rows:
        e = row['entry']
        match = '' if e.target_params is None else (
            ' (=)' if e.target_params == row['params'] else
            f" ({row['params'] - e.target_params:+,})")
        cells = [e.name, f"{row['params']:,}{match}", _fmt(e.target_params, ','),
                 f"{row['gmacs']:.3f}", _fmt(e.target_gmacs, '.3f'), e.paper]
        if dense_macs:
            cells += [_fmt(row.get('dense_params'), ','), _fmt(row.get('dense_gmacs'), '.2f')]
        note = e.note
        if row.get('gmacs_as_run') is not None and \
                abs(row['gmacs_as_run'] - row['gmacs']) > 5e-4 * row['gmacs']:
            note += ('; ' if note else '') + (f"{row['gmacs_as_run']:.3f} as run (last layer "
                                              'for the cls token only)')
        cells.append(note)
        lines.append('| ' + ' | '.join(cells) + ' |')
    if speed:
        devices = [d for d in ('cpu', 'cuda') if any(d in r for r in rows)]
        batch = 1 if quick else 8
        lines += ['', f'## Forward speed (batch {batch}, 224x224, eval, no grad, fp32)', '',
                  'CPU peak: peak resident set of a fresh process (reset after a first build did '
                  'the imports) minus the resident set before building, weights included; '
                  'CUDA peak: `torch.cuda.max_memory_allocated`.' +
                  (' Quick run: short timings, rough.' if quick else ''), '']
        head = ['model'] + [f'{d.upper()} {c}' for d in devices
                            for c in ('images/s', 'peak MB')]
        lines += ['| ' + ' | '.join(head) + ' |', '|---|' + '---:|' * (len(head) - 1)]
        for row in rows:
            cells = [row['entry'].name]
            for d in devices:
                cells += [_fmt(row.get(d, {}).get('ips'), '.1f'),
                          _fmt(row.get(d, {}).get('peak_mb'), '.0f')]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def select(names: Optional[Sequence[str]]) -> List[ZooEntry]:
    """The entries named (all without names); unknown names raise, listing the known ones."""
    if not names:
        return list(ZOO)
    known = {e.name: e for e in ZOO}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f'unknown archs {unknown}; choose from {list(known)}')
    return [known[n] for n in names]


def main(argv=None) -> str:
    from visattn_mm.visualization.config_model import quiet_mmengine
    with quiet_mmengine():  # mmengine's INFO lines of model building stay out of the tables
        return _main(sys.argv[1:] if argv is None else list(argv))


def _main(argv: List[str]) -> str:
    if argv and argv[0] == '--_speed':  # the child of measure_speed_subprocess
        entry = ZooEntry(**json.loads(argv[1]))
        print(json.dumps(measure_speed(entry, argv[2], int(argv[3]), float(argv[4]))))
        return ''
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--archs', nargs='+', help=f'rows to measure (of {[e.name for e in ZOO]})')
    parser.add_argument('--no-speed', action='store_true', help='skip timing and memory')
    parser.add_argument('--quick', action='store_true', help='batch 1, short timings')
    parser.add_argument('--dense-macs', action='store_true',
                        help='also GMACs of the dense-prediction backbone at 800x1333')
    parser.add_argument('--out', help='write the markdown here too')
    args = parser.parse_args(argv)
    entries = select(args.archs)
    rows = measure(entries, speed=not args.no_speed, quick=args.quick,
                   dense_macs=args.dense_macs)
    text = markdown(rows, speed=not args.no_speed, dense_macs=args.dense_macs,
                    quick=args.quick)
    print(text)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text)
    return text


if __name__ == '__main__':
    try:
        main()
    except ValueError as err:
        sys.exit(f'error: {err}')
