"""Parity with the authors' released code: converted weights reproduce ``golden/`` outputs.

Every golden file of a family is found by its name pattern and every input in it is checked:
``max|ours - golden| <= 1e-4 * max|golden|`` for each output and feature tensor.
"""
import glob
import os.path as osp

import pytest
import torch

REL_TOL = 1e-4


def golden_files(golden_dir: str, pattern: str) -> list:
    files = sorted(glob.glob(osp.join(golden_dir, pattern)))
    if not files:
        pytest.fail(f'no golden file matches {pattern} in {golden_dir}')
    return files


def load_golden(path: str) -> dict:
    data = torch.load(path, map_location='cpu', weights_only=True)
    assert len(data['inputs']) == len(data['outputs']) > 0, f'{path} has no inputs'
    return data


def assert_close(ours: torch.Tensor, ref: torch.Tensor, what: str) -> float:
    ref = ref.float()
    assert ours.shape == ref.shape, f'{what}: shape {tuple(ours.shape)} != {tuple(ref.shape)}'
    err = (ours.float() - ref).abs().max().item() / ref.abs().max().item()
    assert err <= REL_TOL, f'{what}: relative error {err:.3g} > {REL_TOL}'
    return err


# ----------------------------------------------------------------------------- PSLT
# (section owned by the PSLT work)


# ----------------------------------------------------------------------------- FCViT
# (section owned by the FCViT work)
