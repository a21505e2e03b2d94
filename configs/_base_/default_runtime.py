# Runtime shared by every h2crop config.
default_scope = 'h2crop'
runner_type = 'H2CropRunner'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # The backend follows the device (nccl on CUDA, gloo on CPU) unless set.
    dist_cfg=dict(backend=None),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends,
                  name='visualizer')
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
# Every trainable parameter receives a gradient in every model variant, so
# DDP needs no unused-parameter search.
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         broadcast_buffers=False,
                         find_unused_parameters=False)
# SyncBatchNorm under CUDA data parallelism (ignored on CPU, where the
# runner broadcasts rank 0's BatchNorm statistics before validation).
sync_bn = 'torch'
randomness = dict(seed=0, deterministic=False)
