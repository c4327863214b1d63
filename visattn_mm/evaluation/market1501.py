"""Market-1501 query/gallery re-identification metric (mAP and CMC).

mmdet's ``ReIDMetrics`` ranks one set against itself with no camera or junk handling, so it
cannot give the numbers papers report on Market-1501. This metric follows the standard
protocol:

* every query is ranked against the gallery by Euclidean distance of the features;
* gallery images of the query's identity taken by the query's camera are removed, and so are
  junk images (identity ``-1``); distractors (identity ``0``) stay, as negatives;
* AP is the non-interpolated average precision of the remaining ranking (the mean, over the
  true matches, of the precision at each match's rank; as open-reid / torchreid / fast-reid
  compute it, not the trapezoidal variant of the original MATLAB kit, which reads slightly
  higher); CMC rank-k is the share of queries whose first true match lies within the top k;
* queries with no true match left, and junk or distractor queries, are skipped;
* ties in distance are broken by gallery order (stable sort).

Each test sample's identity, camera and side are read from its ``img_path`` (which mmdet's
``PackReIDInputs`` keeps in the data sample by default): the parent folder names the side
(``query`` or ``bounding_box_test`` by default) and the file name starts with
``<pid>_c<camera>``, as in Market-1501 (``0002_c1s1_000451_03.jpg``, ``-1_c3s2_...``) and
DukeMTMC-reID (``0001_c2_f0046182.jpg``). ``visattn_mm.datasets.convert_market1501``
(``tools/dataset_converters/market1501_to_reid.py``) writes the matching ``meta/test.txt``.

Config::

    test_evaluator = dict(type='visattn_mm.Market1501Metric', topk=(1, 5, 10))

Reported keys (default prefix ``market1501``): ``market1501/mAP``, ``market1501/R1``,
``market1501/R5``, ``market1501/R10``, as fractions in [0, 1].
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from visattn_mm.datasets.market1501 import (DISTRACTOR_PID, JUNK_PID,  # noqa: F401
                                            parse_reid_name)
from visattn_mm.registry import METRICS


def euclidean_distance(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances.

    Args:
        query (np.ndarray): (Q, D) features.
        gallery (np.ndarray): (G, D) features.

    Returns:
        np.ndarray: (Q, G) float64 distances.
    """
    q = np.asarray(query, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    sq = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
    return np.sqrt(np.maximum(sq, 0.0))


def evaluate_market1501(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                        q_cams: np.ndarray, g_cams: np.ndarray,
                        topk: Sequence[int] = (1, 5, 10)) -> Dict[str, Any]:
    """mAP and CMC under the standard Market-1501 protocol (see the module doc).

    Args:
        distmat (np.ndarray): (Q, G) query-to-gallery distances; smaller is more similar.
        q_pids (np.ndarray): (Q,) query identities; -1 = junk, 0 = distractor.
        g_pids (np.ndarray): (G,) gallery identities; -1 = junk, 0 = distractor.
        q_cams (np.ndarray): (Q,) query camera ids.
        g_cams (np.ndarray): (G,) gallery camera ids.
        topk (Sequence[int]): ranks k for CMC. Defaults to (1, 5, 10).

    Returns:
        dict: ``mAP`` (float), ``cmc`` (dict k -> float), ``num_valid_queries`` (int) and
        ``ap`` ((Q,) float array, NaN for skipped queries).

    Raises:
        ValueError: on mismatched shapes, or when no query has a true match left.
    """
    distmat = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids).reshape(-1), np.asarray(g_pids).reshape(-1)
    q_cams, g_cams = np.asarray(q_cams).reshape(-1), np.asarray(g_cams).reshape(-1)
    if distmat.shape != (len(q_pids), len(g_pids)) or len(q_cams) != len(q_pids) \
            or len(g_cams) != len(g_pids):
        raise ValueError(f'distmat {distmat.shape} does not match {len(q_pids)} query pids, '
                         f'{len(q_cams)} query cameras, {len(g_pids)} gallery pids and '
                         f'{len(g_cams)} gallery cameras')
    topk = tuple(int(k) for k in topk)
    if any(k < 1 for k in topk):
        raise ValueError(f'topk must be positive ranks, got {topk}')

    order = np.argsort(distmat, axis=1, kind='stable')
    ap = np.full(len(q_pids), np.nan)
    hits = {k: 0 for k in topk}
    num_valid = 0
    for i in range(len(q_pids)):
        if q_pids[i] in (JUNK_PID, DISTRACTOR_PID):
            continue
        pids, cams = g_pids[order[i]], g_cams[order[i]]
        same_view = (pids == q_pids[i]) & (cams == q_cams[i])
        keep = ~same_view & (pids != JUNK_PID)
        match = pids[keep] == q_pids[i]
        if not match.any():
            continue
        ranks = np.flatnonzero(match)  # 0-based ranks of the true matches
        ap[i] = float(np.mean(np.arange(1, len(ranks) + 1) / (ranks + 1)))
        for k in topk:
            hits[k] += int(ranks[0] < k)
        num_valid += 1
    if num_valid == 0:
        raise ValueError('no query has a true match in the gallery on another camera; check '
                         'the query/gallery split and the identities read from the file names')
    return {'mAP': float(np.nanmean(ap)), 'cmc': {k: hits[k] / num_valid for k in topk},
            'num_valid_queries': num_valid, 'ap': ap}


def _field(sample: Any, key: str) -> Any:
    """``sample[key]`` for a dict, ``sample.key`` for a data element; None when absent."""
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None)


@METRICS.register_module()
class Market1501Metric(BaseMetric):
    """Market-1501 re-ID metric: query vs gallery, same-camera and junk filtering.

    Works on what mmdet's ``BaseReID`` with ``LinearReIDHead`` returns at test time: data
    samples with ``pred_feature`` (D,) and ``img_path``. Identity and camera come from the
    file name, query/gallery membership from the parent folder (see the module doc).

    Args:
        topk (int | Sequence[int]): CMC ranks to report. Defaults to (1, 5, 10).
        query_folder (str): parent-folder name of query images. Defaults to 'query'.
        gallery_folder (str, optional): parent-folder name of gallery images; ``None`` takes
            every image not in ``query_folder`` as gallery. Defaults to 'bounding_box_test'.
        feat_norm (bool): L2-normalise the features before the Euclidean distance (then the
            ranking equals the cosine ranking). Defaults to False: features as given.
        collect_device (str): 'cpu' or 'gpu', for gathering results across ranks.
            Defaults to 'cpu'.
        prefix (str, optional): key prefix. Defaults to None: ``default_prefix``,
            'market1501'.
    """
    default_prefix: Optional[str] = 'market1501'

    def __init__(self,
                 topk: Sequence[int] = (1, 5, 10),
                 query_folder: str = 'query',
                 gallery_folder: Optional[str] = 'bounding_box_test',
                 feat_norm: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(topk, int):
            topk = (topk, )
        self.topk = tuple(int(k) for k in topk)
        if not self.topk or any(k < 1 for k in self.topk):
            raise ValueError(f'topk must be positive ranks, got {topk}')
        self.query_folder = query_folder
        self.gallery_folder = gallery_folder
        self.feat_norm = feat_norm

    def _side(self, img_path: str) -> bool:
        """True for a query image, False for a gallery image.

        Args:
            img_path (str): the image's path; its parent folder names the side.

        Returns:
            bool: whether the image is a query.

        Raises:
            ValueError: the parent folder is neither ``query_folder`` nor ``gallery_folder``.
        """
        folder = osp.basename(osp.dirname(osp.normpath(img_path)))
        if folder == self.query_folder:
            return True
        if self.gallery_folder is None or folder == self.gallery_folder:
            return False
        raise ValueError(
            f"'{img_path}' is neither in a '{self.query_folder}' nor a "
            f"'{self.gallery_folder}' folder; Market1501Metric reads query/gallery membership "
            'from the parent folder (set query_folder / gallery_folder to match your data)')

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Keep each sample's feature, identity, camera and side.

        Args:
            data_batch (Any): the batch from the dataloader (unused).
            data_samples (Sequence[dict | ReIDDataSample]): model outputs with
                ``pred_feature`` and ``img_path``.
        """
        for sample in data_samples:
            feature = _field(sample, 'pred_feature')
            img_path = _field(sample, 'img_path')
            if feature is None or img_path is None:
                raise KeyError('Market1501Metric needs `pred_feature` and `img_path` in each '
                               'data sample (keep img_path in PackReIDInputs meta_keys)')
            if isinstance(feature, torch.Tensor):
                feature = feature.detach().float().cpu()
            else:
                feature = torch.as_tensor(np.asarray(feature), dtype=torch.float32)
            pid, camera = parse_reid_name(img_path)
            self.results.append(dict(feature=feature.reshape(-1), pid=pid, camera=camera,
                                     is_query=self._side(img_path)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """mAP and CMC over all processed samples.

        Args:
            results (list[dict]): the dicts stored by :meth:`process`, gathered from all ranks.

        Returns:
            dict[str, float]: ``{'mAP': ..., 'R1': ..., 'R5': ..., 'R10': ...}`` (the prefix
            is added by mmengine), fractions in [0, 1].
        """
        query = [r for r in results if r['is_query']]
        gallery = [r for r in results if not r['is_query']]
        if not query or not gallery:
            raise ValueError(f'Market1501Metric needs query and gallery images, got '
                             f'{len(query)} query and {len(gallery)} gallery samples')

        def stack(rows: List[dict]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
            feats = torch.stack([r['feature'] for r in rows]).numpy().astype(np.float64)
            if self.feat_norm:
                feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
            return (feats, np.array([r['pid'] for r in rows], dtype=np.int64),
                    np.array([r['camera'] for r in rows], dtype=np.int64))

        q_feats, q_pids, q_cams = stack(query)
        g_feats, g_pids, g_cams = stack(gallery)
        out = evaluate_market1501(euclidean_distance(q_feats, g_feats), q_pids, g_pids, q_cams,
                                  g_cams, topk=self.topk)
        MMLogger.get_current_instance().info(
            f'Market1501Metric: {len(query)} queries ({out["num_valid_queries"]} with a true '
            f'match on another camera), {len(gallery)} gallery images')
        metrics = {'mAP': round(out['mAP'], 4)}
        metrics.update({f'R{k}': round(v, 4) for k, v in out['cmc'].items()})
        return metrics
