# S2 only, January-Aug window: 8 months (paper, temporal_exp).
_base_ = ['../hyper_benefits/crops_S2_jun.py']
end_month = 8
