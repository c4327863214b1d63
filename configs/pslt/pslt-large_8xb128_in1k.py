# PSLT-large (embed 48): the PSLT-base recipe with the larger model.
_base_ = ['./pslt-base_8xb128_in1k.py']

model = dict(backbone=dict(arch='large'), head=dict(in_channels=768))
