# Independent-head ablation: only the level-4 head, S2 + EnMAP + prior
# inputs, January-June window (paper, independent_heads).
_base_ = ['../hyper_benefits/crops_S2_H_P_jun.py']
levels = ('level4', )
_data = dict(levels=levels)
train_dataloader = dict(dataset=_data)
val_dataloader = dict(dataset=_data)
test_dataloader = dict(dataset=_data)
model = dict(levels=levels)
val_evaluator = dict(levels=levels)
test_evaluator = dict(levels=levels)
