# S2 + prior, January-June window (paper, hyper_benefits).
_base_ = ['./crops_S2_H_P_jun.py']
modalities = ('s2', 'prior')
