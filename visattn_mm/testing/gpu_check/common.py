"""What the three parts of the GPU check share: autocast per precision, device sync, the
quiet ``init_weights`` and the markdown tables."""
import contextlib
import logging
from typing import Sequence

import torch

DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def init_quietly(model: torch.nn.Module) -> None:
    """``model.init_weights()`` without mmengine's per-parameter report."""
    from visattn_mm.visualization.config_model import quiet_mmengine
    with quiet_mmengine(logging.ERROR):
        model.init_weights()


def log(msg: str = '') -> None:
    print(msg, flush=True)


def md_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '|'.join('---' for _ in headers) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str):
    dtype = DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
