"""init_model / inference_model on raw tiles of any size."""
import os.path as osp

import h5py
import numpy as np
import pytest
import torch

from h2crop.apis import inference_model, init_model
from h2crop.constants import ENMAP, H5_DIR, PRIOR, S2
from h2crop.datasets.h5io import read_tile


def _tile(root, split='test', index=0):
    sid = open(osp.join(root, 'data_lists', f'{split}.txt')).read().split()[
        index]
    arrays = read_tile(osp.join(root, H5_DIR, sid + '.h5'), (S2, ENMAP,
                                                             PRIOR))
    return arrays


def test_init_model_is_strict_and_in_eval(tiny_model_files, tmp_path):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    assert not model.training
    state = torch.load(ckpt, weights_only=False)['state_dict']
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    bad = tmp_path / 'bad.pth'
    state.pop(next(iter(state)))
    torch.save({'state_dict': state}, bad)
    with pytest.raises(RuntimeError, match='Missing key'):
        init_model(cfg, str(bad))
    with pytest.raises(FileNotFoundError):
        init_model(cfg, str(tmp_path / 'none.pth'))


def test_inference_model_matches_the_test_pipeline(tiny_model_files):
    cfg, ckpt, root = tiny_model_files
    model = init_model(cfg, ckpt)
    arrays = _tile(root)
    out = inference_model(model, arrays[S2], arrays[ENMAP], arrays['prior'],
                          return_probs=True)
    assert out['pred'].shape == (4, 96, 96) and out['pred'].dtype == np.uint8
    assert out['confidence'].shape == (4, 96, 96)
    assert out['deepest_level'].shape == (96, 96)
    # the same as the model's predict on a batch built like the dataset's
    raw = {S2: [torch.from_numpy(arrays[S2][:6])],
           ENMAP: [torch.from_numpy(arrays[ENMAP])],
           PRIOR: [torch.from_numpy(arrays['prior'])]}
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=raw, data_samples=None))
        sample = model(data['inputs'], mode='predict')[0]
    np.testing.assert_array_equal(out['pred'],
                                  sample.pred_sem_seg.data.numpy())
    probs = out['probs']['level2']
    np.testing.assert_allclose(
        np.take_along_axis(probs, out['pred'][1][None].astype(int), 0)[0],
        out['confidence'][1], rtol=1e-6)
    # batched input gives batched output
    batch = inference_model(model, arrays[S2][None], arrays[ENMAP][None],
                            arrays['prior'][None])
    np.testing.assert_array_equal(batch['pred'][0], out['pred'])


def test_smaller_and_larger_inputs(tiny_model_files):
    cfg, ckpt, root = tiny_model_files
    model = init_model(cfg, ckpt)
    a = _tile(root)
    small = inference_model(model, a[S2][..., :45, :60],
                            a[ENMAP][:, :15, :20], a['prior'][:, :45, :60])
    assert small['pred'].shape == (4, 45, 60)
    b = _tile(root, index=1)
    s2 = np.concatenate([a[S2], b[S2][..., :51]], -1)  # 96 x 147
    enmap = np.concatenate([a[ENMAP], b[ENMAP][..., :17]], -1)
    prior = np.concatenate([a['prior'], b['prior'][..., :51]], -1)
    big = inference_model(model, s2, enmap, prior)
    assert big['pred'].shape == (4, 96, 147)
    with pytest.raises(ValueError, match='multiple of 3'):
        inference_model(model, a[S2][..., :47, :47], a[ENMAP][:, :15, :15],
                        a['prior'][:, :47, :47])
    with pytest.raises(ValueError, match='enmap'):
        inference_model(model, a[S2], None, a['prior'])


def test_consistent_decoding_and_label_free_tile(tiny_model_files, tmp_path):
    cfg, ckpt, root = tiny_model_files
    model = init_model(cfg, ckpt,
                       cfg_options={'model.test_cfg.decode': 'consistent'})
    a = _tile(root)
    out = inference_model(model, a[S2], a[ENMAP], a['prior'])
    assert model.taxonomy.is_consistent(out['pred'])
    # a tile without label is read (test mode) and mapped
    sid = open(osp.join(root, 'data_lists', 'test.txt')).read().split()[0]
    src = osp.join(root, H5_DIR, sid + '.h5')
    dst = str(tmp_path / 'nolabel.h5')
    with h5py.File(src) as fin, h5py.File(dst, 'w') as fout:
        for key in fin:
            if key != 'label':
                fin.copy(key, fout)
    arrays = read_tile(dst, (S2, ENMAP, PRIOR), require_label=False)
    again = inference_model(model, arrays[S2], arrays[ENMAP],
                            arrays['prior'])
    np.testing.assert_array_equal(again['pred'], out['pred'])
