"""Tests of H2CropDataPreprocessor and batch CutMix."""
import json
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from h2crop.constants import (
    ENMAP,
    ENMAP_BANDS,
    ENMAP_SCALE,
    PRIOR,
    S2,
    S2_BANDS,
)
from h2crop.models.batch_augments import (
    CutMixBox,
    batch_cutmix,
    sample_cutmix_boxes,
)
from h2crop.models.data_preprocessor import H2CropDataPreprocessor
from h2crop.registry import MODELS

T, H, L = 3, 12, 4  # months, S2 side, levels
HE = H // ENMAP_SCALE


def zero_stats() -> Dict[str, Dict[str, List[float]]]:
    """Identity z-score (mean 0, std 1) so raw values survive unchanged."""
    return dict(mean={S2: [0.0] * S2_BANDS, ENMAP: [0.0] * ENMAP_BANDS},
                std={S2: [1.0] * S2_BANDS, ENMAP: [1.0] * ENMAP_BANDS})


def make_sample(index: int, with_gt: bool = True) -> SegDataSample:
    sample = SegDataSample(metainfo=dict(sample_id=f'tile{index}'))
    if with_gt:
        # level l of sample b holds 10 * (b + 1) + l everywhere
        gt = torch.stack([torch.full((H, H), 10 * (index + 1) + lvl,
                                     dtype=torch.uint8) for lvl in range(L)])
        sample.gt_sem_seg = PixelData(data=gt)
    return sample


def coded_batch(batch_size: int, modalities=(S2, ENMAP, PRIOR)) -> dict:
    """Samples whose every value tells sample, month, band or level apart.

    S2[b, t, c] = 1000 (b + 1) + 10 t + c; EnMAP[b, c] = 1000 (b + 1) + c;
    prior[b, l] = 10 (b + 1) + l + 5; label[b, l] = 10 (b + 1) + l.
    """
    t = torch.arange(T).view(T, 1, 1, 1)
    c = torch.arange(S2_BANDS).view(1, S2_BANDS, 1, 1)
    ce = torch.arange(ENMAP_BANDS).view(ENMAP_BANDS, 1, 1)
    lv = torch.arange(L).view(L, 1, 1)
    inputs = {key: [] for key in modalities}
    for b in range(batch_size):
        if S2 in inputs:
            s2 = 1000 * (b + 1) + 10 * t + c  # (T, C, 1, 1)
            inputs[S2].append(s2.expand(T, S2_BANDS, H, H).to(torch.int16))
        if ENMAP in inputs:
            enmap = 1000 * (b + 1) + ce
            inputs[ENMAP].append(
                enmap.expand(ENMAP_BANDS, HE, HE).to(torch.int16))
        if PRIOR in inputs:
            prior = 10 * (b + 1) + lv + 5
            inputs[PRIOR].append(prior.expand(L, H, H).to(torch.uint8))
    return dict(inputs=inputs,
                data_samples=[make_sample(b) for b in range(batch_size)])


def source_maps(out: dict) -> Dict[str, torch.Tensor]:
    """Per modality/level, the sample each pixel came from: (B, H, W)."""
    maps = {}
    inputs = out['inputs']
    if S2 in inputs:
        s2 = inputs[S2].round().long()  # (B, T, C, H, W)
        t = torch.arange(T).view(1, T, 1, 1, 1)
        c = torch.arange(S2_BANDS).view(1, 1, S2_BANDS, 1, 1)
        src = (s2 - 10 * t - c) // 1000 - 1
        # every month and band agrees on the source sample
        assert bool((src == src[:, :1, :1]).all())
        assert bool(((s2 - 10 * t - c) % 1000 == 0).all())
        maps[S2] = src[:, 0, 0]
    if ENMAP in inputs:
        enmap = inputs[ENMAP].round().long()  # (B, 218, h, w)
        ce = torch.arange(ENMAP_BANDS).view(1, ENMAP_BANDS, 1, 1)
        src = (enmap - ce) // 1000 - 1
        assert bool((src == src[:, :1]).all())
        # (B, h, w) -> (B, H, W): one EnMAP pixel covers 3 x 3 S2 pixels
        maps[ENMAP] = src[:, 0].repeat_interleave(
            ENMAP_SCALE, 1).repeat_interleave(ENMAP_SCALE, 2)
    lv = torch.arange(L).view(1, L, 1, 1)
    if PRIOR in inputs:
        src = (inputs[PRIOR] - 5 - lv) // 10 - 1
        for lvl in range(L):
            maps[f'prior{lvl}'] = src[:, lvl]
    gts = torch.stack([s.gt_sem_seg.data for s in out['data_samples']])
    src = (gts - lv) // 10 - 1
    for lvl in range(L):
        maps[f'label{lvl}'] = src[:, lvl]
    return maps


def expected_map(batch_size: int,
                 boxes: List[Optional[CutMixBox]]) -> torch.Tensor:
    src = torch.arange(batch_size).view(-1, 1, 1).expand(-1, H, H).clone()
    for box in boxes:
        if box is not None:
            src[box.index, box.top:box.top + box.height,
                box.left:box.left + box.width] = box.donor
    return src


# ------------------------------------------------------------ construction
def test_registered():
    assert MODELS.get('H2CropDataPreprocessor') is H2CropDataPreprocessor
    pre = MODELS.build(dict(type='H2CropDataPreprocessor', **zero_stats(),
                            cutmix=dict(prob=0.5, ratio_range=(0.5, 1.0))))
    assert isinstance(pre, H2CropDataPreprocessor)


def test_published_band_stats_fit(shared_reference):
    with open(osp.join(shared_reference, 'band_stats.json')) as f:
        stats = json.load(f)
    pre = H2CropDataPreprocessor(
        mean={S2: stats['S2']['mean'], ENMAP: stats['EnMAP']['mean']},
        std={S2: stats['S2']['std'], ENMAP: stats['EnMAP']['std']})
    assert pre.s2_mean.shape == (S2_BANDS, 1, 1)
    assert pre.enmap_std.shape == (ENMAP_BANDS, 1, 1)


@pytest.mark.parametrize('change, match', [
    (lambda m, s: m[S2].pop(), r"mean\['s2'\] must hold 10"),
    (lambda m, s: s[ENMAP].append(1.0), r"std\['enmap'\] must hold 218"),
    (lambda m, s: s[S2].__setitem__(3, 0.0), r'bands \[3\]'),
    (lambda m, s: (m.pop(ENMAP), s.pop(ENMAP), m.pop(S2), s.pop(S2)),
     'need the'),
    (lambda m, s: m.pop(ENMAP), 'same keys'),
    (lambda m, s: (m.__setitem__('S2', m[S2]), s.__setitem__('S2', s[S2])),
     "unknown statistics key 'S2'"),
])
def test_bad_statistics(change, match):
    stats = zero_stats()
    change(stats['mean'], stats['std'])
    with pytest.raises(ValueError, match=match):
        H2CropDataPreprocessor(**stats)


@pytest.mark.parametrize('cutmix, match', [
    (dict(prob=1.5), 'prob'),
    (dict(ratio_range=(0.0, 1.0)), 'ratio_range'),
    (dict(ratio_range=(0.8, 0.5)), 'ratio_range'),
    (dict(p=0.5), 'unknown cutmix keys'),
])
def test_bad_cutmix(cutmix, match):
    with pytest.raises(ValueError, match=match):
        H2CropDataPreprocessor(**zero_stats(), cutmix=cutmix)


# ------------------------------------------------------------ normalisation
def test_normalisation_matches_numpy():
    rng = np.random.default_rng(0)
    mean = {S2: rng.uniform(-500, 3000, S2_BANDS).tolist(),
            ENMAP: rng.uniform(-500, 3000, ENMAP_BANDS).tolist()}
    std = {S2: rng.uniform(50, 3000, S2_BANDS).tolist(),
           ENMAP: rng.uniform(50, 3000, ENMAP_BANDS).tolist()}
    s2 = rng.integers(-2000, 12000, (2, T, S2_BANDS, H, H), dtype=np.int16)
    enmap = rng.integers(-2000, 12000, (2, ENMAP_BANDS, HE, HE),
                         dtype=np.int16)
    prior = rng.integers(0, 100, (2, L, H, H), dtype=np.uint8)
    data = dict(inputs={S2: [torch.from_numpy(x) for x in s2],
                        ENMAP: [torch.from_numpy(x) for x in enmap],
                        PRIOR: [torch.from_numpy(x) for x in prior]},
                data_samples=[make_sample(0), make_sample(1)])
    pre = H2CropDataPreprocessor(mean=mean, std=std,
                                 cutmix=dict(prob=1.0))
    out = pre(data, training=False)
    ref_s2 = (s2.astype(np.float64) - np.array(mean[S2])[:, None, None]) / \
        np.array(std[S2])[:, None, None]
    ref_en = (enmap.astype(np.float64) -
              np.array(mean[ENMAP])[:, None, None]) / \
        np.array(std[ENMAP])[:, None, None]
    np.testing.assert_allclose(out['inputs'][S2].numpy(), ref_s2,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out['inputs'][ENMAP].numpy(), ref_en,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out['inputs'][PRIOR].numpy(), prior)


def test_dtypes_shapes_and_device():
    pre = H2CropDataPreprocessor(**zero_stats())
    data = coded_batch(2)
    out = pre(data, training=False)
    inputs = out['inputs']
    assert inputs[S2].dtype == torch.float32
    assert inputs[S2].shape == (2, T, S2_BANDS, H, H)
    assert inputs[ENMAP].dtype == torch.float32
    assert inputs[ENMAP].shape == (2, ENMAP_BANDS, HE, HE)
    assert inputs[PRIOR].dtype == torch.int64
    assert inputs[PRIOR].shape == (2, L, H, H)
    for sample, given in zip(out['data_samples'], data['data_samples']):
        assert sample.gt_sem_seg.data.dtype == torch.int64
        assert sample.gt_sem_seg.data.shape == (L, H, H)
        assert sample.sample_id == given.sample_id
        # the dataloader's samples are left untouched
        assert given.gt_sem_seg.data.dtype == torch.uint8
    for value in list(inputs.values()) + [
            s.gt_sem_seg.data for s in out['data_samples']]:
        assert value.device == pre.device == torch.device('cpu')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_moves_to_cuda():
    pre = H2CropDataPreprocessor(**zero_stats(),
                                 cutmix=dict(prob=1.0)).to('cuda')
    out = pre(coded_batch(2), training=True)
    for value in out['inputs'].values():
        assert value.is_cuda
    assert all(s.gt_sem_seg.data.is_cuda for s in out['data_samples'])
    maps = {k: v.cpu() for k, v in source_maps(out).items()}
    assert all(torch.equal(m, maps[S2]) for m in maps.values())


def test_absent_modalities_stay_absent_and_stacked_input_works():
    pre = H2CropDataPreprocessor(mean={S2: [0.0] * S2_BANDS},
                                 std={S2: [1.0] * S2_BANDS})
    data = coded_batch(2, modalities=(S2, ))
    data['inputs'][S2] = torch.stack(data['inputs'][S2])  # pre-stacked
    out = pre(data, training=False)
    assert set(out['inputs']) == {S2}
    assert out['inputs'][S2].shape == (2, T, S2_BANDS, H, H)
    # EnMAP arriving without statistics is an error, not a silent pass
    with pytest.raises(ValueError, match="'enmap' but no mean/std"):
        pre(coded_batch(2, modalities=(S2, ENMAP)), training=False)


def test_bad_inputs():
    pre = H2CropDataPreprocessor(**zero_stats())
    data = coded_batch(2)
    data['inputs'][S2][1] = data['inputs'][S2][1][:2]
    with pytest.raises(ValueError, match=r"inputs\['s2'\] of sample 'tile1'"):
        pre(data, training=False)
    data = coded_batch(2)
    data['inputs']['S2'] = data['inputs'].pop(S2)
    with pytest.raises(ValueError, match='unknown input modalities'):
        pre(data, training=False)
    data = coded_batch(2)
    data['inputs'][S2] = [x[:, :4] for x in data['inputs'][S2]]
    with pytest.raises(ValueError, match='has 4 bands'):
        pre(data, training=False)


def test_cutmix_needs_labels():
    pre = H2CropDataPreprocessor(**zero_stats(), cutmix=dict(prob=1.0))
    data = coded_batch(2)
    data['data_samples'][1] = make_sample(1, with_gt=False)
    with pytest.raises(ValueError, match="sample 'tile1' has none"):
        pre(data, training=True)


# ------------------------------------------------------------ CutMix
@pytest.mark.parametrize('batch_size', [2, 3, 5])
def test_cutmix_same_region_everywhere(batch_size):
    pre = H2CropDataPreprocessor(**zero_stats(), cutmix=dict(prob=1.0))
    torch.manual_seed(batch_size)
    out = pre(coded_batch(batch_size), training=True)
    torch.manual_seed(batch_size)
    boxes = sample_cutmix_boxes(batch_size, H, H, prob=1.0)
    expected = expected_map(batch_size, boxes)
    maps = source_maps(out)
    assert set(maps) == {S2, ENMAP} | {f'prior{i}' for i in range(L)} | {
        f'label{i}' for i in range(L)}
    for name, src in maps.items():
        assert torch.equal(src, expected), name
    # prob = 1: every sample received a square from another sample
    assert all(box is not None and box.donor != box.index for box in boxes)
    for b in range(batch_size):
        assert (expected[b] != b).any()


def test_cutmix_reads_donors_before_pasting():
    # B = 2 with prob 1: each sample is the other's donor; the pasted square
    # must show the donor's original content, never a square pasted into it.
    inputs = {S2: torch.stack(coded_batch(2)['inputs'][S2])}
    gts = torch.stack([s.gt_sem_seg.data
                       for s in coded_batch(2)['data_samples']])
    torch.manual_seed(0)
    inputs, gts, boxes = batch_cutmix(inputs, gts, prob=1.0)
    assert [box.donor for box in boxes] == [1, 0]
    src = (gts[:, 0].long() // 10) - 1
    assert torch.equal(src, expected_map(2, boxes))


def test_box_geometry_and_statistics():
    torch.manual_seed(0)
    size, batch_size, prob = 192, 4, 0.5
    boxes = [box for _ in range(1500) for box in sample_cutmix_boxes(
        batch_size, size, size, prob, (0.5, 1.0))]
    applied = [box for box in boxes if box is not None]
    assert abs(len(applied) / len(boxes) - prob) < 0.03
    sides = set()
    for box in applied:
        assert box.height == box.width
        assert box.height % ENMAP_SCALE == 0
        assert box.top % ENMAP_SCALE == 0 and box.left % ENMAP_SCALE == 0
        assert size // 2 <= box.height < size
        assert box.top + box.height <= size
        assert box.left + box.width <= size
        assert box.donor != box.index
        # the aligned side is the largest multiple of 3 <= int(192 r)
        sides.add(box.height)
    assert min(sides) == 96 and max(sides) == 189
    # donors uniform over the other samples
    counts = np.zeros((batch_size, batch_size))
    for box in applied:
        counts[box.index, box.donor] += 1
    for index in range(batch_size):
        others = np.delete(counts[index], index)
        assert others.min() > 0.8 * others.mean()
    # squares reach every border
    assert min(box.top for box in applied) == 0
    assert max(box.top + box.height for box in applied) == size


def test_unaligned_grid_gives_spec_sides():
    torch.manual_seed(1)
    sides = {box.height for _ in range(400) for box in sample_cutmix_boxes(
        4, 192, 192, 1.0, (0.5, 1.0), enmap_scale=1)}
    assert min(sides) == 96 and max(sides) == 191
    assert any(side % 3 for side in sides)


def test_cutmix_prob_zero_changes_nothing():
    base = H2CropDataPreprocessor(**zero_stats())
    pre = H2CropDataPreprocessor(**zero_stats(), cutmix=dict(prob=0.0))
    ref = base(coded_batch(3), training=True)
    out = pre(coded_batch(3), training=True)
    for key in ref['inputs']:
        assert torch.equal(out['inputs'][key], ref['inputs'][key])
    for a, b in zip(out['data_samples'], ref['data_samples']):
        assert torch.equal(a.gt_sem_seg.data, b.gt_sem_seg.data)
    assert torch.equal(source_maps(out)[S2], expected_map(3, []))


def test_eval_never_cuts_and_leaves_rng_alone():
    pre = H2CropDataPreprocessor(**zero_stats(), cutmix=dict(prob=1.0))
    state = torch.get_rng_state()
    out = pre(coded_batch(3), training=False)
    assert torch.equal(torch.get_rng_state(), state)
    for src in source_maps(out).values():
        assert torch.equal(src, expected_map(3, []))


def test_batch_of_one_is_never_cut():
    pre = H2CropDataPreprocessor(**zero_stats(), cutmix=dict(prob=1.0))
    out = pre(coded_batch(1), training=True)
    assert torch.equal(source_maps(out)[S2], expected_map(1, []))


def test_cutmix_seeded_runs_reproducible():
    pre = H2CropDataPreprocessor(**zero_stats(),
                                 cutmix=dict(prob=0.5, ratio_range=(0.5, 1)))

    def run(seed):
        torch.manual_seed(seed)
        return [source_maps(pre(coded_batch(4), training=True))[S2]
                for _ in range(3)]

    first, again, other = run(7), run(7), run(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    # restoring the RNG state (as resume does) continues the same stream
    torch.manual_seed(7)
    pre(coded_batch(4), training=True)
    state = torch.get_rng_state()
    second = source_maps(pre(coded_batch(4), training=True))[S2]
    torch.manual_seed(123)
    torch.set_rng_state(state)
    assert torch.equal(
        source_maps(pre(coded_batch(4), training=True))[S2], second)
    assert torch.equal(second, first[1])


def test_batch_cutmix_rejects_misaligned_enmap():
    inputs = {S2: torch.zeros(2, T, S2_BANDS, H, H),
              ENMAP: torch.zeros(2, ENMAP_BANDS, HE + 1, HE)}
    with pytest.raises(ValueError, match="'enmap' has shape"):
        batch_cutmix(inputs, None, prob=1.0)
    with pytest.raises(ValueError, match='divisible'):
        sample_cutmix_boxes(2, 10, 10, 1.0)
