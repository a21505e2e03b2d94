"""Gap filling in time against a per-pixel computation."""
import numpy as np

from h2crop.products import interpolate_months


def _reference(series, times):
    """Per pixel: linear between the nearest valid months, else nearest."""
    out = series.copy()
    valid = [k for k in range(len(series)) if not np.isnan(series[k])]
    for k in range(len(series)):
        if not np.isnan(series[k]) or not valid:
            continue
        before = [v for v in valid if v < k]
        after = [v for v in valid if v > k]
        if before and after:
            p, n = before[-1], after[0]
            w = (times[k] - times[p]) / (times[n] - times[p])
            out[k] = series[p] + w * (series[n] - series[p])
        else:
            out[k] = series[(before or after)[-1 if before else 0]]
    return out


def test_interpolate_months_matches_reference():
    rng = np.random.default_rng(0)
    times = np.array([1, 2, 3, 5, 8, 9, 12], np.float64)
    values = rng.uniform(0, 5000, (len(times), 2, 6, 7)).astype(np.float32)
    gaps = rng.random((len(times), 6, 7)) < 0.45
    gaps[:, 0, 0] = True  # never observed
    values[np.broadcast_to(gaps[:, None], values.shape)] = np.nan
    filled, was = interpolate_months(values, times)
    for b in range(2):
        for i in range(6):
            for j in range(7):
                ref = _reference(values[:, b, i, j].astype(np.float64),
                                 times)
                np.testing.assert_allclose(filled[:, b, i, j], ref,
                                           rtol=1e-5, equal_nan=True)
    assert np.isnan(filled[:, :, 0, 0]).all() and not was[:, 0, 0].any()
    assert (was == (gaps & ~gaps.all(0))).all()
