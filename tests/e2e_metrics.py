"""The metric keys each task's end-to-end case must report (tests/test_e2e.py and the family
case files tests/e2e_cases_<family>.py)."""
DET = ('coco/bbox_mAP', 'coco/bbox_mAP_50')
SEGM = DET + ('coco/segm_mAP', 'coco/segm_mAP_50')
SEM = ('aAcc', 'mIoU')
REID = ('market1501/mAP', 'market1501/R1', 'market1501/R5', 'market1501/R10')
CLS = ('accuracy/top1', )
