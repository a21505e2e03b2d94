"""Tests of the per-level decoders and the deepest-confident-level product."""
import numpy as np
import pytest
import torch

from h2crop.constants import LEVELS
from h2crop.datasets.synthetic import synthetic_taxonomy
from h2crop.models.heads.decoding import (
    chosen_probability,
    consistent_decode,
    decode_levels,
    deepest_confident_level,
    taxonomy_paths,
)
from h2crop.taxonomy import Taxonomy


def _random_probs(tax, batch=2, size=7, seed=0, levels=LEVELS):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, tax.num_classes[LEVELS.index(lv)], size, size,
                        generator=gen).mul(3).softmax(1) for lv in levels]


def test_paths_cover_every_leaf_and_background():
    tax = synthetic_taxonomy(0, counts=(2, 3, 4, 5))
    paths = taxonomy_paths(tax)
    assert paths.shape == (6, 4)
    assert (paths[0] == 0).all()
    assert tax.is_consistent(paths.T)
    assert sorted(paths[:, 3]) == list(range(6))
    with pytest.raises(ValueError, match='taxonomy'):
        taxonomy_paths(Taxonomy.default())


def test_consistent_is_a_path_and_maximises_the_score():
    tax = synthetic_taxonomy(1, counts=(3, 5, 7, 9))
    probs = _random_probs(tax)
    paths = torch.as_tensor(taxonomy_paths(tax))
    pred = consistent_decode(probs, paths)
    assert pred.shape == (2, 4, 7, 7)
    assert tax.is_consistent(pred.permute(1, 0, 2, 3).numpy())
    # brute force at a few pixels: no path scores higher
    logp = [p.log() for p in probs]
    for b, y, x in [(0, 0, 0), (1, 3, 5), (0, 6, 2)]:
        scores = [sum(logp[k][b, int(path[k]), y, x] for k in range(4))
                  for path in paths]
        best = paths[int(np.argmax(scores))]
        assert pred[b, :, y, x].tolist() == best.tolist()
    argmax = decode_levels(probs, 'argmax')
    assert not tax.is_consistent(argmax.permute(1, 0, 2, 3).numpy())


def test_consistent_equals_argmax_where_argmax_is_a_path():
    tax = synthetic_taxonomy(2, counts=(3, 5, 7, 9))
    paths = torch.as_tensor(taxonomy_paths(tax))
    # peaked probabilities on a consistent random path per pixel
    gen = torch.Generator().manual_seed(0)
    chosen = paths[torch.randint(0, len(paths), (2, 6, 6), generator=gen)]
    probs = []
    for k in range(4):
        logits = torch.randn(2, tax.num_classes[k], 6, 6, generator=gen)
        # (B, H, W, L) -> (B, 1, H, W)
        logits.scatter_(1, chosen[..., k].unsqueeze(1), 6.0)
        probs.append(logits.softmax(1))
    argmax = decode_levels(probs, 'argmax')
    assert tax.is_consistent(argmax.permute(1, 0, 2, 3).numpy())
    assert torch.equal(decode_levels(probs, 'consistent', paths), argmax)


def test_subset_of_levels():
    tax = synthetic_taxonomy(0, counts=(2, 3, 4, 5))
    levels = ('level2', 'level3')
    paths = taxonomy_paths(tax, levels)
    assert paths.shape == (5, 2)
    probs = _random_probs(tax, levels=levels)
    pred = consistent_decode(probs, torch.as_tensor(paths))
    assert tax.is_consistent(pred.permute(1, 0, 2, 3).numpy(), levels)


def test_confidence_and_deepest_level_respect_tau():
    tax = synthetic_taxonomy(0, counts=(2, 3, 4, 5))
    probs = _random_probs(tax, size=9, seed=4)
    pred = decode_levels(probs, 'argmax')
    conf = chosen_probability(probs, pred)
    np.testing.assert_allclose(
        conf[:, 0].numpy(), probs[0].max(1).values.numpy())
    for tau in (0.0, 0.2, 0.5, 0.9, 1.0):
        deep = deepest_confident_level(conf, LEVELS, tau)
        assert deep.dtype == torch.uint8 and deep.shape == (2, 9, 9)
        path_prob = conf.double().cumprod(1)
        for b in range(2):
            for y in range(9):
                for x in range(9):
                    d = int(deep[b, y, x])
                    if d:
                        assert path_prob[b, d - 1, y, x] >= tau
                    if d < 4:
                        assert path_prob[b, d, y, x] < tau
    assert (deepest_confident_level(conf, LEVELS, 0.0) == 4).all()
    # a subset of levels reports taxonomy level numbers
    sub = deepest_confident_level(torch.ones(1, 2, 2, 2),
                                  ('level2', 'level3'), 0.5)
    assert (sub == 3).all()
    with pytest.raises(ValueError, match='tau'):
        deepest_confident_level(conf, LEVELS, 1.5)
