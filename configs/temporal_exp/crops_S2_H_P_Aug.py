# S2 + EnMAP + prior, January-Aug window: 8 months (paper, temporal_exp).
_base_ = ['../hyper_benefits/crops_S2_H_P_jun.py']
end_month = 8
