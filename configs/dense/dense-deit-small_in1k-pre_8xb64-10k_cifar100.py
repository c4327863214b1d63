# CIFAR-100 fine-tuning of DenseDeiT-small from its ImageNet-1k weights (the paper reports 89.6
# top-1): the protocol of dense-deit-small_in1k-pre_8xb64-10k_cifar10.py with 100 classes.
_base_ = './dense-deit-small_in1k-pre_8xb64-10k_cifar10.py'

num_classes = 100
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(dataset=dict(type='CIFAR100', data_root='data/cifar100'))
val_dataloader = dict(dataset=dict(type='CIFAR100', data_root='data/cifar100'))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
