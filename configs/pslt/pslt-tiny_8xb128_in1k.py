# PSLT-tiny (embed 24): the PSLT-base recipe with the smaller model.
_base_ = ['./pslt-base_8xb128_in1k.py']

model = dict(backbone=dict(arch='tiny'), head=dict(in_channels=384))
