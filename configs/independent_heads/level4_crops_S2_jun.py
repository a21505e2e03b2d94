# Independent-head ablation: only the level-4 head, S2 + EnMAP + prior
# inputs, January-June window (paper, independent_heads).
_base_ = ['../hyper_benefits/crops_S2_H_P_jun.py']
levels = ('level4', )
