# S2 + EnMAP + prior, January-Dec window: 12 months (paper, temporal_exp).
_base_ = ['../hyper_benefits/crops_S2_H_P_jun.py']
end_month = 12
_data = dict(end_month=end_month)
train_dataloader = dict(dataset=_data)
val_dataloader = dict(dataset=_data)
test_dataloader = dict(dataset=_data)
model = dict(num_frames=end_month)
