# Region demo: the CPU demo model trained on tiles converted from the
# synthetic region of `make demo-region` (tools/demo_region.py): raw S2 /
# EnMAP GeoTIFFs and parcel GeoPackages -> rasters2h2crop.py -> 96 px tiles.
# Tests report pixel and parcel metrics (the tiles carry parcel_id). The
# taxonomy is the converted dataset's <data_root>/cascade_labels.csv.
_base_ = ['./h2crop_demo_s2_h_p.py']
data_root = 'data/region_demo/tiles'
max_epochs = 10

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', eta_min=2e-5, by_epoch=True, begin=0,
         convert_to_iter_based=True),
]
