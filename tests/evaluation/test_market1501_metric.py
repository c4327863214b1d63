"""Market-1501 protocol metric: hand-computed example, brute-force reference, filtering."""
import numpy as np
import pytest
import torch

from visattn_mm.evaluation.market1501 import (Market1501Metric, euclidean_distance,
                                              evaluate_market1501, parse_reid_name)

# Hand example: 2 queries, 6 gallery images.
#   query A: pid 1, camera 1        query B: pid 2, camera 2
#   g0 pid 1 cam 1  (same identity and camera as A: removed for A)
#   g1 pid 1 cam 2  g2 pid 2 cam 1  g3 pid 0 cam 3 (distractor)
#   g4 pid -1 cam 2 (junk)          g5 pid 1 cam 3
Q_PIDS, Q_CAMS = np.array([1, 2]), np.array([1, 2])
G_PIDS, G_CAMS = np.array([1, 1, 2, 0, -1, 1]), np.array([1, 2, 1, 3, 2, 3])
HAND_DIST = np.array([
    # g0   g1   g2   g3   g4   g5
    [0.1, 0.4, 0.5, 0.3, 0.2, 0.6],  # A: kept ranking g3 g1 g2 g5 -> matches at ranks 2, 4
    [0.3, 0.5, 0.2, 0.4, 0.1, 0.6],  # B: kept ranking g2 ... -> match at rank 1
])
# A: AP = (1/2 + 2/4) / 2 = 0.5, first match at rank 2.  B: AP = 1, first match at rank 1.
HAND_MAP, HAND_CMC = 0.75, {1: 0.5, 2: 1.0, 5: 1.0, 10: 1.0}


def test_hand_example():
    out = evaluate_market1501(HAND_DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, topk=(1, 2, 5, 10))
    assert out['mAP'] == pytest.approx(HAND_MAP)
    assert out['cmc'] == pytest.approx(HAND_CMC)
    assert out['num_valid_queries'] == 2
    np.testing.assert_allclose(out['ap'], [0.5, 1.0])


def test_filtering_matters():
    """Without the same-camera and junk rules the hand example scores differently."""
    # Treat every gallery image as another camera and nothing as junk: A now finds g0 first
    # (AP = (1/1 + 2/4 + 3/6) / 3), B meets the junk image first (AP = 1/2).
    no_filter = evaluate_market1501(HAND_DIST, Q_PIDS, np.where(G_PIDS == -1, 99, G_PIDS),
                                    Q_CAMS, np.full(6, 9), topk=(1, ))
    assert no_filter['mAP'] == pytest.approx((2 / 3 + 0.5) / 2)
    assert no_filter['cmc'][1] == pytest.approx(0.5)
    assert no_filter['mAP'] != pytest.approx(HAND_MAP)


def test_distractors_stay_as_negatives():
    # B with the distractor moved in front of its match: AP drops to 1/2, rank-1 misses.
    dist = HAND_DIST.copy()
    dist[1, 3] = 0.15
    out = evaluate_market1501(dist, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, topk=(1, ))
    assert out['ap'][1] == pytest.approx(0.5)
    assert out['cmc'][1] == pytest.approx(0.0)


def _brute_force(dist, q_pids, g_pids, q_cams, g_cams, topk):
    """A straightforward, loop-only reading of the protocol."""
    aps, hits = [], {k: 0 for k in topk}
    for i in range(len(q_pids)):
        if q_pids[i] in (-1, 0):
            continue
        ranked = sorted(range(len(g_pids)), key=lambda j: (dist[i][j], j))
        kept = [j for j in ranked if g_pids[j] != -1
                and not (g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i])]
        good = [r for r, j in enumerate(kept, start=1) if g_pids[j] == q_pids[i]]
        if not good:
            continue
        aps.append(sum(n / r for n, r in enumerate(good, start=1)) / len(good))
        for k in topk:
            hits[k] += good[0] <= k
    return float(np.mean(aps)), {k: hits[k] / len(aps) for k in topk}


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    nq, ng, d = 15, 60, 8
    q_feat, g_feat = rng.normal(size=(nq, d)), rng.normal(size=(ng, d))
    q_pids = rng.integers(1, 8, nq)
    g_pids = rng.integers(-1, 8, ng)  # includes junk (-1) and distractors (0)
    q_cams, g_cams = rng.integers(1, 4, nq), rng.integers(1, 4, ng)
    dist = euclidean_distance(q_feat, g_feat)
    ref = np.sqrt(((q_feat[:, None] - g_feat[None]) ** 2).sum(-1))
    np.testing.assert_allclose(dist, ref, atol=1e-9)
    topk = (1, 3, 5, 10)
    out = evaluate_market1501(dist, q_pids, g_pids, q_cams, g_cams, topk=topk)
    ref_map, ref_cmc = _brute_force(ref, q_pids, g_pids, q_cams, g_cams, topk)
    assert out['mAP'] == pytest.approx(ref_map)
    assert out['cmc'] == pytest.approx(ref_cmc)
    assert 0 < out['mAP'] < 1


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match='no query has a true match'):
        # the only match of the query is on its own camera
        evaluate_market1501(np.zeros((1, 2)), [1], [1, 2], [1], [1, 1])


def test_parse_reid_name():
    assert parse_reid_name('/d/query/0002_c1s1_000451_03.jpg') == (2, 1)
    assert parse_reid_name('-1_c3s2_000401_03.jpg') == (-1, 3)
    assert parse_reid_name('0000_c6s1_000151_01.jpg') == (0, 6)
    assert parse_reid_name('0001_c2_f0046182.jpg') == (1, 2)  # DukeMTMC-reID
    with pytest.raises(ValueError, match='PPPP_cCsS_FFFFFF_NN.jpg'):
        parse_reid_name('query/img_001.jpg')


def _samples(feats, pids, cams, folder, frame0=0):
    out = []
    for n, (f, p, c) in enumerate(zip(feats, pids, cams)):
        prefix = '-1' if p == -1 else f'{p:04d}'
        out.append({'pred_feature': torch.as_tensor(f, dtype=torch.float32),
                    'img_path': f'/data/market/{folder}/{prefix}_c{c}s1_{frame0 + n:06d}_01.jpg',
                    'gt_label': {'label': torch.tensor([p])}})
    return out


def _hand_features():
    # Gallery g_j = e_j and query q = -t: |q - e_j|^2 = |q|^2 + 1 + 2 t_j, so the ranking
    # follows the hand distances exactly.
    return -HAND_DIST, np.eye(6)


def test_metric_hand_example_and_registry():
    from mmengine.registry import METRICS
    metric = METRICS.build(dict(type='visattn_mm.Market1501Metric', topk=(1, 2, 5, 10)))
    assert isinstance(metric, Market1501Metric)
    q, g = _hand_features()
    samples = _samples(g, G_PIDS, G_CAMS, 'bounding_box_test') + \
        _samples(q, Q_PIDS, Q_CAMS, 'query', frame0=100)
    metric.process({}, samples[:4])  # several batches, queries and gallery mixed
    metric.process({}, samples[4:])
    res = metric.evaluate(len(samples))
    assert res == {'market1501/mAP': HAND_MAP, 'market1501/R1': 0.5, 'market1501/R2': 1.0,
                   'market1501/R5': 1.0, 'market1501/R10': 1.0}


def test_metric_feature_norm_and_prefix():
    rng = np.random.default_rng(0)
    # identity encoded in the direction only; scale varies wildly
    pids = np.repeat(np.arange(1, 6), 4)
    cams = np.tile([1, 2, 3, 4], 5)
    base = np.eye(5)[pids - 1] + 0.05 * rng.normal(size=(20, 5))
    # gallery norms alternate between 10 and 0.2: a large same-identity feature lies farther
    # (in plain Euclidean distance) from a unit query than a small other-identity one
    idx = np.arange(20)
    norms = np.where(idx % 4 == 0, 1.0, np.where(idx % 2, 10.0, 0.2))
    scaled = base * norms[:, None]
    q_idx, g_idx = np.arange(0, 20, 4), np.setdiff1d(np.arange(20), np.arange(0, 20, 4))
    samples = _samples(scaled[q_idx], pids[q_idx], cams[q_idx], 'query') + \
        _samples(scaled[g_idx], pids[g_idx], cams[g_idx], 'bounding_box_test', 50)
    normed = Market1501Metric(feat_norm=True, prefix='reid')
    normed.process({}, samples)
    assert normed.evaluate(len(samples))['reid/mAP'] == 1.0
    plain = Market1501Metric()
    plain.process({}, samples)
    assert plain.evaluate(len(samples))['market1501/mAP'] < 1.0


def test_metric_reads_data_elements():
    """ReIDDataSample objects (not only dicts) are accepted."""
    from mmdet.structures import ReIDDataSample
    q, g = _hand_features()
    samples = []
    for s in _samples(g, G_PIDS, G_CAMS, 'bounding_box_test') + \
            _samples(q, Q_PIDS, Q_CAMS, 'query', frame0=100):
        ds = ReIDDataSample(metainfo=dict(img_path=s['img_path']))
        ds.pred_feature = s['pred_feature']
        samples.append(ds)
    metric = Market1501Metric(topk=1)
    metric.process({}, samples)
    assert metric.evaluate(len(samples)) == {'market1501/mAP': HAND_MAP, 'market1501/R1': 0.5}


def test_metric_errors():
    metric = Market1501Metric()
    with pytest.raises(ValueError, match="neither in a 'query' nor a 'bounding_box_test'"):
        metric.process({}, _samples(np.eye(2), [1, 2], [1, 2], 'images'))
    with pytest.raises(KeyError, match='pred_feature'):
        metric.process({}, [{'img_path': '/q/query/0001_c1s1_000001_01.jpg'}])
    with pytest.raises(ValueError, match='topk'):
        Market1501Metric(topk=(0, 1))
    only_gallery = Market1501Metric()
    only_gallery.process({}, _samples(np.eye(2), [1, 2], [1, 2], 'bounding_box_test'))
    with pytest.raises(ValueError, match='needs query and gallery'):
        only_gallery.evaluate(2)
    # gallery_folder=None: everything outside query/ is gallery
    loose = Market1501Metric(gallery_folder=None)
    q, g = _hand_features()
    loose.process({}, _samples(g, G_PIDS, G_CAMS, 'anything') + _samples(q, Q_PIDS, Q_CAMS,
                                                                         'query', 100))
    assert loose.evaluate(8)['market1501/mAP'] == HAND_MAP

