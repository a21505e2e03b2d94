# One demo model for every month window and input set: trained on all 12
# months with S2 + EnMAP + prior, drawing per sample a window end month
# (April .. December) and dropping EnMAP / the prior with probability 0.3
# (first guesses, to be retuned), so that one checkpoint can be tested at
# any window and input subset. The top-level end_month / modalities describe
# the data; the model keeps its maximum (all months, all modalities). Test
# at another window and without EnMAP, e.g.:
#   python tools/test.py configs/any_window/h2crop_demo_any_window.py CKPT \
#       --cfg-options end_month=6 "modalities=['s2','prior']"
_base_ = ['../demo/h2crop_demo_s2_h_p.py']
end_month = 12
modalities = ('s2', 'enmap', 'prior')
model = dict(any_window=dict(end_months=(4, 5, 6, 7, 8, 9, 10, 11, 12),
                             enmap_drop=0.3, prior_drop=0.3))
