# BViT-22M fine-tuned on CIFAR-100 from its ImageNet-1k weights (paper: 89.9 top-1): the CIFAR-10
# recipe (ours, see bvit-small_in1k-pre_8xb64_cifar10.py) on mmpretrain's CIFAR100 dataset
# (data/cifar100/cifar-100-python, downloaded on first use).
_base_ = ['./bvit-small_in1k-pre_8xb64_cifar10.py']

model = dict(head=dict(num_classes=100))
data_preprocessor = dict(num_classes=100)
train_dataloader = dict(dataset=dict(type='CIFAR100', data_root='data/cifar100'))
val_dataloader = dict(dataset=dict(type='CIFAR100', data_root='data/cifar100'))
test_dataloader = val_dataloader
