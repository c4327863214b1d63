# ADE20K semantic segmentation (mmseg's ade20k base: 512x512 crops, single-scale test with the
# long side 2048 and the short side 512) with the training set repeated x50 and 4 images per GPU,
# as in the Semantic FPN recipe of PoolFormer and FCViT (fpn_*_ade20k_40k).
_base_ = 'mmseg::_base_/datasets/ade20k.py'

train_dataloader = dict(
    batch_size=4,
    dataset=dict(_delete_=True, type='RepeatDataset', times=50,
                 dataset={{_base_.train_dataloader.dataset}}))
