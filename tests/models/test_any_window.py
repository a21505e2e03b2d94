"""The any-window model: one model for every month window and input set."""
import pytest
import torch

from h2crop.constants import ENMAP, LEVELS, NUM_MONTHS, PRIOR, S2
from h2crop.models.segmentors.any_window import Presence

from .test_segmentor import _assert_all_grads
from .tiny_dualstream import build_tiny, make_batch

ALL = (S2, ENMAP, PRIOR)
SUBSETS = ((S2, ), (S2, ENMAP), (S2, PRIOR), ALL)
OPTIONS = dict(end_months=tuple(range(4, NUM_MONTHS + 1)), enmap_drop=0.3,
               prior_drop=0.3)


#: Without and with the opt-in pixel skip (whose S2 part sees the filled
#: months and whose EnMAP part has its own absent embedding).
SKIPS = (None, dict(embed_dims=4, enmap_embed_dims=3))


def _model(pixel_skip=None, **options):
    torch.manual_seed(0)
    return build_tiny(ALL, num_frames=NUM_MONTHS, pixel_skip=pixel_skip,
                      any_window=dict(OPTIONS, **options))


@pytest.fixture(scope='module', params=SKIPS, ids=('plain', 'pixel_skip'))
def model(request):
    return _model(request.param).eval()


def _clone(inputs):
    return {k: v.clone() for k, v in inputs.items()}


def _logits(model, inputs, presence=None):
    with torch.no_grad():
        return model._forward_logits(inputs, presence)


def _same(a, b):
    return all(torch.equal(a[lv], b[lv]) for lv in a)


def _drawn(pixel_skip, batch, data_seed, draw_seed):
    """A training-mode model, a batch and a seeded per-sample draw."""
    model = _model(pixel_skip).train()
    inputs, samples = make_batch(ALL, LEVELS, NUM_MONTHS, batch=batch,
                                 seed=data_seed)
    torch.manual_seed(draw_seed)
    return model, inputs, samples, model.any_window.draw(inputs)


def test_hidden_months_and_dropped_inputs_do_not_leak(model):
    """Perturbing what the draws hide changes nothing; the rest does."""
    inputs, _ = make_batch(ALL, LEVELS, NUM_MONTHS, batch=3, seed=1)
    presence = Presence(end_month=torch.tensor([5, 12, 3]),
                        enmap=torch.tensor([False, True, True]),
                        prior=torch.tensor([True, False, True]))
    ref = _logits(model, inputs, presence)

    hidden = _clone(inputs)
    hidden[S2][0, 5:] += 7.0  # months 6..12 of sample 0
    hidden[S2][2, 3:] = -hidden[S2][2, 3:]  # months 4..12 of sample 2
    hidden[ENMAP][0] = torch.randn_like(hidden[ENMAP][0]) * 5
    hidden[PRIOR][1] = (hidden[PRIOR][1] + 1) % 7  # level ids stay valid
    assert _same(ref, _logits(model, hidden, presence))

    # one visible change per sample: a kept month, kept EnMAP, kept prior
    visible = _clone(inputs)
    visible[S2][0, 4] += 3.0  # month 5 of sample 0 (end month 5)
    visible[ENMAP][1] += 3.0
    visible[PRIOR][2] = (visible[PRIOR][2] + 1) % 7
    changed = _logits(model, visible, presence)
    for sample in range(3):
        assert not all(torch.equal(ref[lv][sample], changed[lv][sample])
                       for lv in LEVELS), sample


def test_inference_on_a_short_window_equals_training_truncation(model):
    """T months given == 12 months given with months T+1.. hidden."""
    full, _ = make_batch(ALL, LEVELS, NUM_MONTHS, batch=2, seed=2)
    for months in (1, 6):
        short = dict(full, **{S2: full[S2][:, :months]})
        presence = Presence(end_month=torch.full((2, ), months),
                            enmap=torch.ones(2, dtype=torch.bool),
                            prior=torch.ones(2, dtype=torch.bool))
        assert _same(_logits(model, short), _logits(model, full, presence))
    # absent modalities == present ones dropped for the whole batch
    no_inputs = {S2: full[S2]}
    dropped = Presence(end_month=torch.full((2, ), NUM_MONTHS),
                       enmap=torch.zeros(2, dtype=torch.bool),
                       prior=torch.zeros(2, dtype=torch.bool))
    assert _same(_logits(model, no_inputs), _logits(model, full, dropped))


@pytest.mark.parametrize('pixel_skip', SKIPS)
def test_training_draws_do_not_leak_into_the_loss(pixel_skip):
    """The loss path: perturb what a seeded draw hides, same loss."""
    model, inputs, samples, drawn = _drawn(pixel_skip, 4, 3, 11)
    assert (drawn.end_month < NUM_MONTHS).any()
    assert not drawn.enmap.all() and not drawn.prior.all()
    hidden = _clone(inputs)
    for i in range(4):
        hidden[S2][i, int(drawn.end_month[i]):] *= -3.0
        if not drawn.enmap[i]:
            hidden[ENMAP][i] += 5.0
        if not drawn.prior[i]:
            hidden[PRIOR][i] = (hidden[PRIOR][i] + 1) % 7
    losses = []
    for batch in (inputs, hidden):
        torch.manual_seed(11)
        with torch.no_grad():
            losses.append(model(batch, samples, mode='loss'))
    for key in losses[0]:
        assert torch.equal(losses[0][key], losses[1][key]), key


@pytest.mark.parametrize('modalities', SUBSETS)
def test_runs_at_every_end_month_and_input_subset(model, modalities):
    for months in range(1, NUM_MONTHS + 1):
        inputs, samples = make_batch(modalities, LEVELS, months, batch=1)
        with torch.no_grad():
            preds = model(inputs, samples, mode='predict')
            losses = model(inputs, samples, mode='loss')
        assert preds[0].pred_sem_seg.data.shape[0] == len(LEVELS)
        assert ('prior_sem_seg' in preds[0]) == (PRIOR in modalities)
        assert all(torch.isfinite(v) for v in losses.values())


def test_slide_inference_without_enmap_and_short_window(model):
    inputs, _ = make_batch((S2, PRIOR), LEVELS, 7, batch=1)
    whole = model.predict_probs(inputs, mode='whole')
    slide = model.predict_probs(inputs, mode='slide')
    for lv in LEVELS:
        assert whole[lv].shape == slide[lv].shape
        assert torch.allclose(whole[lv].sum(1), torch.ones(1))


@pytest.mark.parametrize('pixel_skip', SKIPS)
def test_training_draws_per_sample_and_every_parameter_learns(pixel_skip):
    model, inputs, samples, drawn = _drawn(pixel_skip, 6, 4, 5)
    # per sample, not per batch: some truncated, some not; mixed drops
    assert len(set(drawn.end_month.tolist())) > 1
    assert set(drawn.end_month.tolist()) <= set(OPTIONS['end_months'])
    for mask in (drawn.enmap, drawn.prior):
        assert mask.any() and not mask.all()
    torch.manual_seed(5)
    losses = model(inputs, samples, mode='loss')
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    aw = model.any_window
    # only the offsets of months some sample hid get a gradient
    hidden = torch.arange(1, NUM_MONTHS + 1) > drawn.end_month.min()
    offset_grad = aw.month_offset.grad.abs().sum(1)
    assert torch.equal(offset_grad > 0, hidden)
    aw.month_offset.grad[hidden] += 1.0  # the rest checked just above
    _assert_all_grads(model, 'any-window')


def test_draws_follow_the_probabilities_and_the_batch():
    model = _model(end_months=(4, 12), enmap_drop=1.0, prior_drop=0.0)
    inputs, _ = make_batch(ALL, LEVELS, NUM_MONTHS, batch=64)
    torch.manual_seed(0)
    drawn = model.any_window.draw(inputs)
    assert not drawn.enmap.any() and drawn.prior.all()
    assert set(drawn.end_month.tolist()) == {4, 12}
    short, _ = make_batch((S2, ), LEVELS, 6, batch=64)
    drawn = model.any_window.draw(short)  # clipped to the batch's months
    assert set(drawn.end_month.tolist()) == {4, 6}
    assert not drawn.enmap.any() and not drawn.prior.any()


@pytest.mark.parametrize('options,message', [
    (dict(end_month=(4, )), 'unknown keys'),
    (dict(end_months=(0, 4)), 'end_months'),
    (dict(end_months=(13, )), r'1\.\.12'),
    (dict(end_months=()), 'end_months'),
    (dict(enmap_drop=1.5), 'enmap_drop'),
    (dict(prior_drop=-0.1), 'prior_drop'),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        build_tiny(ALL, num_frames=NUM_MONTHS, any_window=options)


def test_drop_of_a_modality_the_model_lacks_is_refused():
    with pytest.raises(ValueError, match='prior_drop'):
        build_tiny((S2, ENMAP), num_frames=8, any_window=dict(prior_drop=.5))
    model = build_tiny((S2, ), num_frames=8, any_window=dict())
    assert model.any_window.end_months == tuple(range(1, 9))
    too_long, _ = make_batch((S2, ), LEVELS, 9, batch=1)
    with pytest.raises(ValueError, match='T <= 8'):
        model(too_long, mode='tensor')
    with_enmap, _ = make_batch((S2, ENMAP), LEVELS, 4, batch=1)
    with pytest.raises(KeyError, match='enmap'):
        model(with_enmap, mode='tensor')


def test_off_by_default_builds_the_same_parameters():
    """any_window=None adds nothing to the model (paper configs)."""
    torch.manual_seed(0)
    plain = build_tiny(ALL, num_frames=NUM_MONTHS)
    names = {n for n, _ in _model().named_parameters()}
    new = names - {n for n, _ in plain.named_parameters()}
    assert plain.any_window is None
    assert new == {'any_window.month_token', 'any_window.month_offset',
                   'any_window.absent_enmap'}
    # full inputs: the any-window path computes what the plain model does
    anywin = _model().eval()
    plain.load_state_dict(anywin.state_dict(), strict=False)
    plain.eval()
    inputs, _ = make_batch(ALL, LEVELS, NUM_MONTHS, batch=2, seed=6)
    assert _same(_logits(plain, inputs), _logits(anywin, inputs))
