# Swin-T with broad attention on ImageNet-1k. No recipe was released for it; this is Swin's own
# (mmpretrain's swin-tiny_16xb64_in1k, the Swin paper's): AdamW lr 1e-3 at batch 1024, weight
# decay 0.05 (none on norms, biases, position tables), 300 epochs cosine to 1e-5 after 20 warm-up
# epochs, drop path 0.2, gradient clipping at 5.0, RandAugment m9-mstd0.5, Mixup 0.8 / CutMix 1.0,
# label smoothing 0.1, random erasing 0.25; test: resize 256, centre crop 224.
# The paper reports "more than 1%" over Swin-T (81.3 in mmpretrain's zoo); no number is public.
_base_ = [
    'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(backbone={{_base_.broadswin_tiny}})  # last stage (768 channels) -> GAP -> linear
