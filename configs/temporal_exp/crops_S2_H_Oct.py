# S2 + EnMAP, January-Oct window: 10 months (paper, temporal_exp).
_base_ = ['../hyper_benefits/crops_S2_H_jun.py']
end_month = 10
