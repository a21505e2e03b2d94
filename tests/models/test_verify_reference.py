"""The fidelity CLI against the shared reference vectors."""
import os.path as osp
import re
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(REPO, 'tools', 'analysis_tools', 'verify_reference.py')


@pytest.mark.slow
def test_verify_reference_cli(shared_reference):
    run = subprocess.run([sys.executable, CLI, shared_reference],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    errors = [float(e) for e in re.findall(r'max_abs_err=(\S+)', run.stdout)]
    # 3 swin3d cases x 5 tensors + 4 dual-stream logits
    assert len(errors) == 19 and max(errors) <= 1e-4
    agreements = re.findall(r'argmax_agreement=(\S+)%', run.stdout)
    assert len(agreements) == 4
    assert all(float(a) >= 99.9 for a in agreements)


def test_verify_reference_cli_fails_on_tight_tolerance(shared_reference):
    """The exit status reflects the tolerance (a negative atol fails all)."""
    run = subprocess.run([sys.executable, CLI, shared_reference, '--atol',
                          '-1'], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 1
    assert 'FAIL' in run.stdout
