# Head-slimming study: DenseDeiT-small with 3 heads of 64 channels per layer (released: 6),
# same recipe as dense-deit-small_4xb256_in1k.py.
_base_ = './dense-deit-small_4xb256_in1k.py'

model = dict(backbone=dict(num_heads=3))
