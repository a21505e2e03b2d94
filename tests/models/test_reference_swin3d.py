"""Fidelity of S2TemporalSwin against the original's reference vectors."""
import pytest

from h2crop.verification.swin3d import verify_swin3d_cases

TOL = 1e-4
CASES = ('a_t6_w233', 'b_t6_w277', 'c_t10_w233')
TENSORS = {f'features_list_{i}' for i in range(4)} | {'encoder_features'}


def test_original_mode_reproduces_all_cases(shared_reference):
    results = verify_swin3d_cases(shared_reference)
    assert {r['case'] for r in results} == set(CASES)
    for case in CASES:
        assert {r['tensor'] for r in results if r['case'] == case} == TENSORS
    bad = [r for r in results if not r['max_abs_err'] <= TOL]
    assert not bad, bad


def test_exact_mode_differs_only_where_the_window_shrinks_in_hw(
        shared_reference):
    results = verify_swin3d_cases(shared_reference, rel_pos_index_mode='exact')
    errors = {(r['case'], r['tensor']): r['max_abs_err'] for r in results}
    # Cases a and c shrink only the temporal axis (or keep the window):
    # both index modes are the same there.
    for case in ('a_t6_w233', 'c_t10_w233'):
        for tensor in TENSORS:
            assert errors[(case, tensor)] <= TOL, (case, tensor)
    # Case b: window (2, 7, 7) shrinks to (1, 6, 6) in the third stage, so
    # the geometrically exact index changes its output and what follows.
    for tensor in ('features_list_0', 'features_list_1', 'features_list_2'):
        assert errors[('b_t6_w277', tensor)] <= TOL, tensor
    assert errors[('b_t6_w277', 'features_list_3')] > 10 * TOL
    assert errors[('b_t6_w277', 'encoder_features')] > 10 * TOL


def test_missing_reference_folder_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match='cases.json'):
        verify_swin3d_cases(str(tmp_path))
