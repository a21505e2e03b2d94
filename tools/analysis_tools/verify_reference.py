"""Check h2crop's modules against the original implementation's outputs.

Usage::

    python tools/analysis_tools/verify_reference.py ../shared/reference

Builds the S2 encoder for every case of ``swin3d/cases.json`` and the whole
S2 + EnMAP + prior model for ``dualstream/case.json``, loads the reference
weights through the project's own loaders, runs the stored inputs, prints
the maximum absolute error of every expected tensor (and the agreement of
the argmax maps) and exits with status 1 if any error exceeds the tolerance
or any agreement falls below the minimum.
"""
import argparse
import sys

from h2crop.verification.dualstream import (
    MIN_ARGMAX_AGREEMENT,
    verify_dualstream_case,
)
from h2crop.verification.swin3d import verify_swin3d_cases

TOLERANCE = 1e-4


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('reference_dir',
                        help='the shared reference folder (holds swin3d/ '
                        'and dualstream/)')
    parser.add_argument('--atol', type=float, default=TOLERANCE,
                        help='maximum absolute error allowed per tensor '
                        '(default: %(default)s)')
    parser.add_argument('--min-agreement', type=float,
                        default=MIN_ARGMAX_AGREEMENT,
                        help='minimum fraction of equal argmax pixels '
                        '(default: %(default)s)')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    results = []
    results += [dict(r, suite='swin3d')
                for r in verify_swin3d_cases(args.reference_dir)]
    results += [dict(r, suite='dualstream')
                for r in verify_dualstream_case(args.reference_dir)]
    failures = 0
    for r in results:
        name = f"{r['suite']}/{r['case']}/{r['tensor']}"
        if 'max_abs_err' in r:
            ok = r['max_abs_err'] <= args.atol
            value = f"max_abs_err={r['max_abs_err']:.3e} (atol {args.atol:g})"
        else:
            ok = r['agreement'] >= args.min_agreement
            value = (f"argmax_agreement={100 * r['agreement']:.4f}% "
                     f"(min {100 * args.min_agreement:g}%)")
        failures += not ok
        print(f"{'OK  ' if ok else 'FAIL'} {name:55s} {value} "
              f"shape={tuple(r['shape'])}")
    print(f'{len(results) - failures}/{len(results)} expected tensors within '
          'tolerance')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
