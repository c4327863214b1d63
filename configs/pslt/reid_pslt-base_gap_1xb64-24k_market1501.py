# Market-1501 re-ID with a PSLT-base backbone (the abstract reports re-ID experiments; the
# authors released no re-ID code, so the recipe is configs/_base_/models/reid_market1501.py).
_base_ = ['../_base_/models/reid_market1501.py', '../_base_/models/pslt.py']

model = dict(
    backbone={{_base_.pslt_base_reid}},  # configs/_base_/models/pslt.py
    head=dict(in_channels=576))
