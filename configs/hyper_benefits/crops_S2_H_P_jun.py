# S2 + EnMAP + prior, January-June window (paper, Table "hyper benefits").
_base_ = [
    '../_base_/datasets/h2crop.py', '../_base_/models/h2crop_dualstream.py',
    '../_base_/schedules/schedule_100e.py', '../_base_/default_runtime.py'
]
modalities = ('s2', 'enmap', 'prior')
end_month = 6
levels = ('level1', 'level2', 'level3', 'level4')
# Tiles' cascade_labels.csv (class names in the logs, hierarchy check).
taxonomy = 'data/h2crop/cascade_labels.csv'

_data = dict(modalities=modalities, end_month=end_month, levels=levels,
             taxonomy=taxonomy)
train_dataloader = dict(dataset=_data)
val_dataloader = dict(dataset=_data)
test_dataloader = dict(dataset=_data)
model = dict(
    modalities=modalities,
    num_frames=end_month,
    levels=levels,
    taxonomy=taxonomy,
    data_preprocessor=dict(mean={{_base_.norm_mean}},
                           std={{_base_.norm_std}}))
val_evaluator = dict(type='HierarchicalSegMetric', levels=levels,
                     taxonomy=taxonomy, log_per_class=False)
test_evaluator = dict(type='HierarchicalSegMetric', levels=levels,
                      taxonomy=taxonomy, file_prefix='test_metrics')
