# S2 + EnMAP, January-Dec window: 12 months (paper, temporal_exp).
_base_ = ['../hyper_benefits/crops_S2_H_jun.py']
end_month = 12
