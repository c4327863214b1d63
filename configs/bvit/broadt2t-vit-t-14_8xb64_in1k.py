# T2T-ViT-14 with broad attention on ImageNet-1k. No recipe was released for it; this is T2T-ViT's
# own (mmpretrain's t2t-vit-t-14_8xb64_in1k): AdamW lr 5e-4 at batch 512, weight decay 0.05 (none
# on norms, biases, cls token), 310 epochs (10 warm-up, cosine to 1e-5, 10 cool-down), drop path
# 0.1, EMA, RandAugment m9-mstd0.5, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, random erasing
# 0.25; test: resize 248, centre crop 224.
# The paper reports "more than 1%" over T2T-ViT-14 (81.5 in its paper); no number is public.
_base_ = [
    'mmpretrain::t2t_vit/t2t-vit-t-14_8xb64_in1k.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(backbone={{_base_.broadt2t_vit_14}})  # cls token -> VisionTransformerClsHead
