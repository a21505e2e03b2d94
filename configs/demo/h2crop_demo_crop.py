# The `make demo` recipe: the demo S2 + EnMAP + prior model trained on
# random 48 px crops of its 96 px tiles (opt-in experiment key
# train_crop_size; tested and mapped on sliding 48 px windows), with a wider
# pixel skip and per-pixel paths in the heads. Each of these is an opt-in
# switch the paper configs leave off; each was measured on the demo and the
# `alt` synthetic tiles (README, "Ablations": "Levers"). A step over a crop
# costs about a fifth of a step over the whole tile, so 30 epochs fit the
# demo's time (2-core CPU) where the whole-tile recipe had 15.
_base_ = ['./h2crop_demo_s2_h_p.py']
max_epochs = 30
train_crop_size = 48

model = dict(
    pixel_skip=dict(embed_dims=64, enmap_embed_dims=64),
    head=dict(hidden_channels=32, linear_shortcut=True))

train_cfg = dict(val_interval=20)
default_hooks = dict(checkpoint=dict(interval=20))
