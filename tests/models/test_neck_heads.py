"""Tests of FusionDecoder and CascadeHeads."""
import pytest
import torch
import torch.nn.functional as F

from h2crop.models import CascadeHeads, FusionDecoder


def _features(batch=2, size=64):
    # skips shallow -> deep at H/4, H/8, H/16; encoder features at H/32
    skips = [torch.randn(batch, c, size // s, size // s)
             for c, s in ((12, 4), (16, 8), (16, 16))]
    skips.append(torch.randn(batch, 32, size // 32, size // 32))
    return skips, torch.randn(batch, 32, size // 32, size // 32)


@pytest.mark.parametrize('enmap', [None, 6])
def test_fusion_decoder_shapes_and_channels(enmap):
    neck = FusionDecoder(in_channels=32, skip_channels=(12, 16, 16),
                         enmap_channels=enmap)
    widths = [layer[0].conv.in_channels for layer in neck.fuse_layers]
    assert widths == [32 + 16, 16 + 16, 8 + 12]  # deep -> shallow
    assert [layer[1].out_channels for layer in neck.fuse_layers] == [16, 8, 4]
    assert neck.out_channels == 4 + (enmap or 0)
    feats, enc = _features()
    extra = torch.randn(2, enmap, 64, 64) if enmap else None
    out = neck(feats, enc, (64, 64), extra)
    assert out.shape == (2, neck.out_channels, 64, 64)
    out.mean().backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None, name


def test_fusion_decoder_enmap_mismatch():
    neck = FusionDecoder(in_channels=32, skip_channels=(12, 16, 16))
    feats, enc = _features()
    with pytest.raises(ValueError, match='enmap_feature is given'):
        neck(feats, enc, (64, 64), torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match='divisible'):
        FusionDecoder(in_channels=36, skip_channels=(12, 16, 16))


def test_cascade_inputs_and_grad_through_logits():
    heads = CascadeHeads(in_channels=5, num_classes=(3, 4, 6),
                         levels=('level1', 'level2', 'level4'),
                         with_prior=True)
    # F + previous logits + one-hot prior of the level itself
    assert heads.head_in_channels == (5 + 3, 5 + 3 + 4, 5 + 4 + 6)
    feature = torch.randn(2, 5, 8, 8, requires_grad=True)
    prior = torch.stack([torch.randint(0, n, (2, 8, 8)) for n in (3, 4, 6)],
                        dim=1)
    out = heads(feature, prior)
    assert [tuple(v.shape) for v in out.values()] == [
        (2, 3, 8, 8), (2, 4, 8, 8), (2, 6, 8, 8)]
    # level4's loss reaches level1's head: logits are passed on undetached
    out['level4'].sum().backward()
    assert heads.heads['level1'].conv_seg.weight.grad.abs().sum() > 0


def test_cascade_single_level_has_no_previous_logits():
    heads = CascadeHeads(in_channels=5, num_classes=(37, ),
                         levels=('level2', ), with_prior=False)
    assert heads.head_in_channels == (5, )
    assert heads.heads['level2'].hidden.out_channels == 2


def test_cascade_one_hot_matches_manual_concat():
    torch.manual_seed(0)
    heads = CascadeHeads(in_channels=2, num_classes=(3, ),
                         levels=('level1', ), with_prior=True).eval()
    feature = torch.randn(1, 2, 4, 4)
    prior = torch.randint(0, 3, (1, 1, 4, 4))
    manual = torch.cat(
        [feature, F.one_hot(prior[:, 0], 3).permute(0, 3, 1, 2).float()], 1)
    assert torch.equal(heads(feature, prior)['level1'],
                       heads.heads['level1'](manual))


def test_cascade_loss_is_mean_ce_with_background_and_checks():
    heads = CascadeHeads(in_channels=2, num_classes=(3, 5),
                         levels=('level1', 'level2'))
    logits = {'level1': torch.randn(2, 3, 4, 4),
              'level2': torch.randn(2, 5, 4, 4)}
    gt = torch.stack([torch.randint(0, 3, (2, 4, 4)),
                      torch.zeros(2, 4, 4, dtype=torch.long)], dim=1)
    losses = heads.loss(logits, gt)
    assert set(losses) == {'loss_level1', 'loss_level2', 'acc_level1',
                           'acc_level2'}
    # background (id 0) is an ordinary class, nothing ignored
    expected = F.cross_entropy(logits['level2'], gt[:, 1])
    assert torch.allclose(losses['loss_level2'], expected)
    with pytest.raises(ValueError, match='prior of level1 has ids'):
        CascadeHeads(2, (3, ), ('level1', ), with_prior=True)(
            torch.randn(1, 2, 4, 4), torch.full((1, 1, 4, 4), 3))
    with pytest.raises(ValueError, match='coarse to fine'):
        CascadeHeads(2, (3, 4), ('level2', 'level1'))


@pytest.mark.parametrize('kernel_size', [1, 3])
def test_head_kernel_size_sets_the_receptive_field(kernel_size):
    """1 x 1 heads are per pixel; the paper's 3 x 3 ones see neighbours."""
    torch.manual_seed(0)
    heads = CascadeHeads(in_channels=6, num_classes=(3, 5), levels=(
        'level1', 'level2'), with_prior=True, kernel_size=kernel_size)
    assert all(h.hidden.kernel_size == (kernel_size, kernel_size)
               for h in heads.heads.values())
    feature = torch.randn(1, 6, 9, 9)
    prior = torch.zeros(1, 2, 9, 9, dtype=torch.long)
    base = heads(feature, prior)
    moved = feature.clone()
    moved[..., 4, 4] += 5.0
    out = heads(moved, prior)
    for level in heads.levels:
        changed = (out[level] != base[level]).any(1)[0]  # (H, W)
        reach = 0 if kernel_size == 1 else 2  # two stacked 3 x 3 levels
        expected = torch.zeros(9, 9, dtype=torch.bool)
        r = reach if level == 'level2' else min(reach, 1)
        expected[4 - r:5 + r, 4 - r:5 + r] = True
        assert torch.equal(changed, expected), level


def test_head_kernel_size_refused():
    with pytest.raises(ValueError, match='kernel_size'):
        CascadeHeads(in_channels=6, num_classes=(3, ), levels=('level1', ),
                     kernel_size=2)


def _assert_every_parameter_learns(heads: CascadeHeads, out: dict) -> None:
    """The summed losses on random labels reach every parameter."""
    gt = torch.randint(0, 3, (2, 2, 5, 5))
    losses = heads.loss(out, gt)
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in heads.parameters())


def test_head_hidden_channels_and_linear_shortcut():
    """Opt-in: a fixed hidden width and a per-pixel linear path to logits."""
    torch.manual_seed(0)
    paper = CascadeHeads(in_channels=6, num_classes=(3, 5),
                         levels=('level1', 'level2'), with_prior=True)
    # the paper's hidden width: half of each head input (6+3; 6+3+5)
    assert [h.hidden.out_channels for h in paper.heads.values()] == [4, 7]
    assert paper.shortcuts is None
    heads = CascadeHeads(in_channels=6, num_classes=(3, 5),
                         levels=('level1', 'level2'), with_prior=True,
                         hidden_channels=2, linear_shortcut=True)
    assert [h.hidden.out_channels for h in heads.heads.values()] == [2, 2]
    feature = torch.randn(2, 6, 5, 5)
    prior = torch.randint(0, 3, (2, 2, 5, 5))
    out = heads(feature, prior)
    # independent computation of level 1: context path + linear shortcut
    one_hot = F.one_hot(prior[:, 0], 3).permute(0, 3, 1, 2).float()
    x = torch.cat([feature, one_hot], 1)
    head = heads.heads['level1']
    context = F.conv2d(F.relu(F.conv2d(x, head.hidden.weight,
                                       head.hidden.bias, padding=1)),
                       head.conv_seg.weight, head.conv_seg.bias)
    direct = torch.einsum('bchw,kc->bkhw', x,
                          heads.shortcuts['level1'].weight[:, :, 0, 0])
    assert torch.allclose(out['level1'], context + direct, atol=1e-5)
    # every parameter, shortcut included, gets a gradient
    _assert_every_parameter_learns(heads, out)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match='hidden_channels'):
            CascadeHeads(in_channels=6, num_classes=(3, ),
                         levels=('level1', ), hidden_channels=bad)


def test_head_reduce_channels():
    """Opt-in: a linear 1 x 1 reduction before each hidden convolution."""
    torch.manual_seed(0)
    heads = CascadeHeads(in_channels=6, num_classes=(3, 5),
                         levels=('level1', 'level2'), with_prior=True,
                         hidden_channels=4, reduce_channels=2)
    # the head inputs stay those of the paper (6+3; 6+3+5); the hidden
    # convolutions read the 2 reduced channels
    assert heads.head_in_channels == (9, 14)
    assert [h.reduce.in_channels for h in heads.heads.values()] == [9, 14]
    assert [h.hidden.in_channels for h in heads.heads.values()] == [2, 2]
    feature = torch.randn(2, 6, 5, 5)
    prior = torch.randint(0, 3, (2, 2, 5, 5))
    out = heads(feature, prior)
    # independent computation of level 1: 3 x 3 over the reduced input is
    # the 3 x 3 convolution with the composed (rank-2) kernel
    one_hot = F.one_hot(prior[:, 0], 3).permute(0, 3, 1, 2).float()
    x = torch.cat([feature, one_hot], 1)
    head = heads.heads['level1']
    reduce_w = head.reduce.weight[:, :, 0, 0]  # (2, 9)
    kernel = torch.einsum('orhw,rc->ochw', head.hidden.weight, reduce_w)
    bias = head.hidden.bias + torch.einsum(
        'orhw,r->o', head.hidden.weight, head.reduce.bias)
    # zero padding pads the reduced map, whose border is reduce's bias:
    # compare away from the border
    hidden = F.relu(F.conv2d(x, kernel, bias))  # (2, 4, 3, 3), valid
    expected = F.conv2d(hidden, head.conv_seg.weight, head.conv_seg.bias)
    assert torch.allclose(out['level1'][..., 1:-1, 1:-1], expected,
                          atol=1e-5)
    assert out['level2'].shape == (2, 5, 5, 5)
    _assert_every_parameter_learns(heads, out)
    # off: the paper's module layout (no reduce layer, unchanged keys)
    paper = CascadeHeads(in_channels=6, num_classes=(3, ),
                         levels=('level1', ))
    assert list(paper.heads['level1']._modules) == ['hidden', 'act',
                                                   'conv_seg']
    for bad in (0, 1.5, False):
        with pytest.raises(ValueError, match='reduce_channels'):
            CascadeHeads(in_channels=6, num_classes=(3, ),
                         levels=('level1', ), reduce_channels=bad)
