# S2 only, January-June window (paper, hyper_benefits).
_base_ = ['./crops_S2_H_P_jun.py']
modalities = ('s2', )
_data = dict(modalities=modalities)
train_dataloader = dict(dataset=_data)
val_dataloader = dict(dataset=_data)
test_dataloader = dict(dataset=_data)
model = dict(modalities=modalities, enmap_encoder=None)
