# Head-slimming study: DenseDeiT-tiny with a single 64-channel head per layer (released: 2),
# same recipe as dense-deit-tiny_4xb256_in1k.py.
_base_ = './dense-deit-tiny_4xb256_in1k.py'

model = dict(backbone=dict(num_heads=1))
