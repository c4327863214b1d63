# Head-slimming study: DenseDeiT-tiny with 3 heads of 64 channels (DeiT-Ti's count; the released
# dense tiny has 2), same recipe as dense-deit-tiny_4xb256_in1k.py.
_base_ = './dense-deit-tiny_4xb256_in1k.py'

model = dict(backbone=dict(num_heads=3))
