# S2 + prior, January-Oct window: 10 months (paper, temporal_exp).
_base_ = ['../hyper_benefits/crops_S2_P_jun.py']
end_month = 10
_data = dict(end_month=end_month)
train_dataloader = dict(dataset=_data)
val_dataloader = dict(dataset=_data)
test_dataloader = dict(dataset=_data)
model = dict(num_frames=end_month)
