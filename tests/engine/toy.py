"""A toy model, dataset and metric to exercise the engine quickly."""
import numpy as np
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS
from torch.utils.data import Dataset


@DATASETS.register_module(force=True)
class ToyRandomDataset(Dataset):
    """Targets depend on the input; inputs get numpy-RNG augmentation noise."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.metainfo = dict(name='toy')

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, idx: int) -> dict:
        base = torch.linspace(-1, 1, 8) * (idx + 1) / self.size
        noise = torch.from_numpy(np.random.normal(0, 0.1, 8).astype('f4'))
        return dict(inputs=base + noise, data_samples=float(idx % 3))


@MODELS.register_module(force=True)
class ToyDropoutModel(BaseModel):
    """Linear regressor with dropout (consumes the torch RNG)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(16, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.fc2(self.drop(torch.relu(self.fc1(x)))).squeeze(-1)
        if mode == 'loss':
            target = torch.as_tensor(data_samples, dtype=out.dtype)
            return dict(loss=((out - target) ** 2).mean())
        if mode == 'predict':
            target = torch.as_tensor(data_samples, dtype=out.dtype)
            return [dict(err=float((o - t).abs())) for o, t in
                    zip(out, target)]
        return out


@METRICS.register_module(force=True)
class ToyMetric(BaseMetric):
    """Score that rises as the absolute error falls."""

    def process(self, data_batch, data_samples) -> None:
        self.results.extend(d['err'] for d in data_samples)

    def compute_metrics(self, results) -> dict:
        return dict(score=float(100 - np.mean(results)))


def toy_cfg(work_dir: str, max_epochs: int = 3, **hook_kwargs) -> dict:
    """Runner config of the toy problem."""
    hook = dict(type='H2CropCheckpointHook', interval=1, max_keep_ckpts=1,
                save_best='score', rule='greater')
    hook.update(hook_kwargs)
    loader = dict(dataset=dict(type='ToyRandomDataset'), batch_size=4,
                  num_workers=0, sampler=dict(type='DefaultSampler',
                                              shuffle=True))
    val_loader = dict(loader, sampler=dict(type='DefaultSampler',
                                           shuffle=False))
    return dict(
        runner_type='H2CropRunner',
        default_scope='h2crop',
        model=dict(type='ToyDropoutModel'),
        work_dir=work_dir,
        train_dataloader=loader,
        val_dataloader=val_loader,
        val_evaluator=dict(type='ToyMetric'),
        val_cfg=dict(type='ValLoop'),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                       val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2)),
        param_scheduler=[dict(type='CosineAnnealingLR', by_epoch=True,
                              begin=0, end=max_epochs,
                              convert_to_iter_based=True, eta_min=1e-4)],
        default_hooks=dict(checkpoint=hook, logger=dict(type='LoggerHook',
                                                        interval=100)),
        randomness=dict(seed=7),
        log_level='WARNING',
    )
