"""Tests of the H2Crop transforms (flip/rotate and packing)."""
import itertools
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from h2crop.constants import ENMAP, ENMAP_BANDS, PRIOR, S2, S2_BANDS
from h2crop.datasets.transforms import (
    GT_KEY,
    H2CropRandomCrop,
    H2CropRandomFlipRotate,
    PackH2CropInputs,
)
from h2crop.registry import TRANSFORMS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

H = W = 12
T = 3


def _coords_results():
    """Arrays whose values encode their original pixel position."""
    yy, xx = np.mgrid[0:H, 0:W]
    pix = (yy * W + xx).astype(np.int16)  # (H, W) original pixel id
    block = ((np.arange(H // 3)[:, None] * (W // 3)) +
             np.arange(W // 3)[None, :]).astype(np.int16)  # (H/3, W/3)
    s2 = np.broadcast_to(pix, (T, S2_BANDS, H, W)).copy()
    s2 += (np.arange(T)[:, None, None, None] * 1000).astype(np.int16)
    enmap = np.broadcast_to(block, (ENMAP_BANDS, H // 3, W // 3)).copy()
    label = np.stack([pix % 251 + k for k in range(2)]).astype(np.uint8)
    prior = label[::-1].copy()
    return {S2: s2, ENMAP: enmap, GT_KEY: label, PRIOR: prior,
            'img_shape': (H, W)}


def _reference(arr, vflip, hflip, k):
    if vflip:
        arr = np.flip(arr, -2)
    if hflip:
        arr = np.flip(arr, -1)
    return np.rot90(arr, k, axes=(-2, -1))


@pytest.mark.parametrize('vflip,hflip,k', list(
    itertools.product([False, True], [False, True], range(4))))
def test_same_op_on_every_array_and_enmap_grid(vflip, hflip, k):
    res = _coords_results()
    orig = {key: res[key].copy() for key in (S2, ENMAP, GT_KEY, PRIOR)}
    out = H2CropRandomFlipRotate.apply(res, vflip, hflip, k)
    for key, arr in orig.items():
        assert np.array_equal(out[key], _reference(arr, vflip, hflip, k)), key
        assert out[key].flags.c_contiguous
    assert (out['vflip'], out['hflip'], out['rot90_k']) == (vflip, hflip, k)
    assert out['flip'] == (vflip or hflip)
    # every S2 pixel still lies in the EnMAP pixel that covers it
    pix = out[S2][0, 0].astype(int)  # original pixel id per new position
    orig_block = (pix // W // 3) * (W // 3) + (pix % W) // 3
    covering = np.repeat(np.repeat(out[ENMAP][0], 3, 0), 3, 1)
    assert np.array_equal(orig_block, covering)
    # months and bands untouched
    assert np.array_equal(out[S2][:, 0, 0, 0] // 1000, np.arange(T))


def test_probabilities_and_randomness():
    never = H2CropRandomFlipRotate(0., 0., 0.)
    res = _coords_results()
    s2 = res[S2]
    out = never(res)
    assert out[S2] is s2 and out['rot90_k'] == 0 and not out['flip']
    always = TRANSFORMS.build(dict(type='H2CropRandomFlipRotate',
                                   vflip_prob=1., hflip_prob=1.,
                                   rotate_prob=1.))
    np.random.seed(0)
    ks = set()
    for _ in range(30):
        out = always(_coords_results())
        assert out['vflip'] and out['hflip'] and out['rot90_k'] in (1, 2, 3)
        ks.add(out['rot90_k'])
    assert ks == {1, 2, 3}
    half = H2CropRandomFlipRotate()
    stats = np.array([[r['vflip'], r['hflip'], r['rot90_k'] > 0]
                      for r in (half(_coords_results()) for _ in range(400))])
    assert np.all(np.abs(stats.mean(0) - 0.5) < 0.1)
    with pytest.raises(ValueError):
        H2CropRandomFlipRotate(vflip_prob=1.5)


def test_non_square_rotation_updates_img_shape():
    res = {S2: np.zeros((1, S2_BANDS, 6, 9), np.int16),
           GT_KEY: np.zeros((1, 6, 9), np.uint8)}
    out = H2CropRandomFlipRotate.apply(res, False, False, 1)
    assert out[S2].shape[-2:] == (9, 6) and out['img_shape'] == (9, 6)


def test_pack_structure_and_no_copy():
    res = _coords_results()
    res.update(sample_id='x', h5_path='/d/x.h5', levels=('level1', 'level2'),
               end_month=T, ori_shape=(H, W))
    res = H2CropRandomFlipRotate.apply(res, True, False, 1)
    arrays = {k: res[k] for k in (S2, ENMAP, PRIOR, GT_KEY)}
    packed = PackH2CropInputs()(res)
    assert set(packed) == {'inputs', 'data_samples'}
    inputs, sample = packed['inputs'], packed['data_samples']
    assert set(inputs) == {S2, ENMAP, PRIOR}
    assert inputs[S2].dtype == torch.int16 and inputs[S2].shape == (T, 10,
                                                                    H, W)
    assert inputs[ENMAP].dtype == torch.int16
    assert inputs[PRIOR].dtype == torch.uint8
    assert isinstance(sample, SegDataSample)
    assert isinstance(sample.gt_sem_seg, PixelData)
    gt = sample.gt_sem_seg.data
    assert gt.dtype == torch.uint8 and gt.shape == (2, H, W)
    for key in (S2, ENMAP, PRIOR):
        assert inputs[key].is_contiguous()
        assert inputs[key].data_ptr() == arrays[key].ctypes.data  # no copy
    assert gt.data_ptr() == arrays[GT_KEY].ctypes.data
    meta = sample.metainfo
    assert meta['sample_id'] == 'x' and meta['levels'] == ('level1',
                                                           'level2')
    assert meta['end_month'] == T and meta['rot90_k'] == 1 and meta['vflip']
    assert meta['ori_shape'] == meta['img_shape'] == (H, W)


def test_pack_only_present_modalities_and_needs_s2():
    res = _coords_results()
    del res[ENMAP], res[PRIOR]
    packed = PackH2CropInputs()(res)
    assert set(packed['inputs']) == {S2}
    with pytest.raises(KeyError, match='LoadH2CropH5'):
        PackH2CropInputs()({GT_KEY: res[GT_KEY]})


def test_original_rotation_turns_37_5_percent():
    base = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets',
                                    'h2crop.py'))
    cfg = next(t for t in base.train_pipeline
               if t['type'] == 'H2CropRandomFlipRotate')
    original = TRANSFORMS.build(cfg)
    assert original.rotate_prob == 0.5
    assert original.quarter_turns == (0, 1, 2, 3)
    np.random.seed(1)
    ks = np.array([original(_coords_results())['rot90_k']
                   for _ in range(2000)])
    assert abs((ks > 0).mean() - 0.375) < 0.03
    assert set(ks.tolist()) == {0, 1, 2, 3}
    for bad in ((), (4, ), (1, 1)):
        with pytest.raises(ValueError, match='quarter_turns'):
            H2CropRandomFlipRotate(quarter_turns=bad)


def test_random_crop_cuts_every_array_along_enmap_cells():
    np.random.seed(0)
    crop = H2CropRandomCrop(6)
    corners = set()
    for _ in range(60):
        res = _coords_results()
        orig = {key: res[key].copy() for key in (S2, ENMAP, GT_KEY, PRIOR)}
        out = crop(res)
        r0, c0, r1, c1 = out['crop_bbox']
        corners.add((r0, c0))
        assert (r1 - r0, c1 - c0) == (6, 6) and r0 % 3 == c0 % 3 == 0
        assert out['img_shape'] == (6, 6)
        # S2 / labels / prior: the window of the original arrays
        for key in (S2, GT_KEY, PRIOR):
            assert np.array_equal(out[key], orig[key][..., r0:r1, c0:c1])
            assert out[key].flags.c_contiguous
        assert out[ENMAP].shape == (ENMAP_BANDS, 2, 2)
        # each S2 pixel still lies under the EnMAP cell that covers it
        pix = out[S2][0, 0].astype(int)  # original pixel ids
        orig_block = (pix // W // 3) * (W // 3) + (pix % W) // 3
        covering = np.repeat(np.repeat(out[ENMAP][0], 3, 0), 3, 1)
        assert np.array_equal(orig_block, covering)
    # every cell-aligned corner of the 12-px tile is drawn: 3 x 3
    assert corners == {(r, c) for r in (0, 3, 6) for c in (0, 3, 6)}


def test_random_crop_whole_tile_and_refusals():
    res = _coords_results()
    s2 = res[S2].copy()
    out = H2CropRandomCrop(H)(res)
    assert out['crop_bbox'] == (0, 0, H, W)
    assert np.array_equal(out[S2], s2)
    for bad in (0, 4, 7.5, True):
        with pytest.raises(ValueError, match='multiple of 3'):
            H2CropRandomCrop(bad)
    with pytest.raises(ValueError, match='train_crop_size=15'):
        H2CropRandomCrop(15)(_coords_results())
