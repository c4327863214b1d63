# 40k iterations of AdamW lr 2e-4, weight decay 1e-4, poly (power 0.9) to 0: the Semantic FPN
# schedule of PoolFormer and FCViT (fpn_*_ade20k_40k, batch 4 x 8 GPUs); mmseg's schedule_40k
# otherwise (validation and checkpoints every 4000 iterations).
_base_ = 'mmseg::_base_/schedules/schedule_40k.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', power=0.9, begin=0, end=40000, eta_min=0.0, by_epoch=False),
]
