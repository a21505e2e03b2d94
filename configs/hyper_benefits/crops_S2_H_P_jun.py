# S2 + EnMAP + prior, January-June window (paper, Table "hyper benefits").
# The experiment's choices; everything that depends on them (dataloaders,
# model, evaluators, schedule) is derived when the run is built.
_base_ = [
    '../_base_/datasets/h2crop.py', '../_base_/models/h2crop_dualstream.py',
    '../_base_/schedules/schedule_100e.py', '../_base_/default_runtime.py'
]
modalities = ('s2', 'enmap', 'prior')
end_month = 6
