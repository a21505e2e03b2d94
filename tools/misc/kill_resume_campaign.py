"""Kill a tiny training run at random moments and check every resume.

1. writes a tiny synthetic dataset and a tiny S2 + EnMAP + prior config
   (demo model at minimal width, 0 loader workers) into ``--work-dir``;
2. trains it once without interruption (``reference/``);
3. trains it again in ``killed/``, sending SIGKILL ``--kills`` times:
   about 60 % at a random moment after start-up (training iterations,
   validation, checkpoint saves), 25 % inside a checkpoint write (after the
   checkpoint file is written, before it is renamed into place) and 15 %
   during start-up (building, loading the checkpoint). After each kill
   the run is started again with ``--resume`` (or afresh when no
   checkpoint exists yet). A start that fails on its own
   is a failed resume. A run that ends before its kill is compared with the
   reference and the campaign continues with a fresh run;
4. lets the last run finish and compares its final weights with the
   reference, tensor by tensor.

Prints one line per kill (moment, phase, outcome) and a summary; exits 0
only when every resume succeeded and every finished run's weights equal the
reference bit for bit.

Example::

    python tools/misc/kill_resume_campaign.py --kills 20 --seed 0
"""
import argparse
import json
import os
import os.path as osp
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402

from h2crop.constants import ENMAP, S2  # noqa: E402
from h2crop.registry import HOOKS  # noqa: E402

#: Environment variable: kill this process at its n-th checkpoint write.
KILL_AT_SAVE_ENV = 'H2CROP_KILL_AT_SAVE'
DEMO_CONFIG = osp.join(ROOT, 'configs', 'demo', 'h2crop_demo_s2_h_p.py')
#: Phase a run is in after its newest log line of each kind (iteration
#: lines are written at the end of an iteration, so the next one is
#: running; "Saving checkpoint" is written before the write).
PHASES = (('checkpoint write', re.compile(r'Saving checkpoint')),
          ('after validation (best checkpoint, next epoch)',
           re.compile(r'best checkpoint with')),
          ('validation', re.compile(r'Epoch\(val\)')),
          ('training iteration', re.compile(r'Epoch\(train\)')))


@HOOKS.register_module(force=True)
class KillInCheckpointWriteHook(Hook):
    """SIGKILL the process inside its n-th checkpoint write (campaign only).

    Reads ``H2CROP_KILL_AT_SAVE``; does nothing when it is unset. The kill
    comes after the temporary checkpoint file is complete and before it is
    renamed, the moment a crash most often meets a checkpoint write.
    """

    def before_run(self, runner) -> None:
        target = int(os.environ.get(KILL_AT_SAVE_ENV, '0') or 0)
        if target <= 0:
            return
        import h2crop.engine.runner as runner_module
        real_save = runner.save_checkpoint
        calls = [0]

        def save_checkpoint(*args, **kwargs):
            calls[0] += 1
            if calls[0] != target:
                return real_save(*args, **kwargs)
            real_replace = runner_module.os.replace

            def replace_then_die(src, dst):
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
                real_replace(src, dst)  # never reached

            runner_module.os.replace = replace_then_die
            return real_save(*args, **kwargs)

        runner.save_checkpoint = save_checkpoint


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/kill_campaign',
                        help='folder of the dataset, the config, the '
                        'reference/ and killed/ runs (default: %(default)s)')
    parser.add_argument('--kills', type=int, default=20,
                        help='SIGKILLs sent to the second run (default: '
                        '%(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the kill moments (default: '
                        '%(default)s)')
    parser.add_argument('--epochs', type=int, default=3,
                        help='epochs of both runs (default: %(default)s)')
    parser.add_argument('--num-samples', type=int, default=12,
                        help='synthetic tiles (about 2/3 train; default: '
                        '%(default)s)')
    parser.add_argument('--size', type=int, default=48,
                        help='tile side (multiple of 3; default: '
                        '%(default)s)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --work-dir')
    return parser.parse_args(argv)


def write_config(work_dir: str, data_root: str, epochs: int,
                 size: int) -> str:
    """Tiny version of the demo config on the campaign's data."""
    from h2crop.datasets.band_stats import compute_band_stats
    from h2crop.utils.tiny import shrink_to_tiny
    stats = compute_band_stats(data_root, 'train')
    cfg = Config.fromfile(DEMO_CONFIG)
    # the experiment's choices, derived everywhere when the run is built
    cfg.data_root = data_root
    cfg.end_month = 6
    cfg.tile_size = size
    cfg.max_epochs = epochs
    cfg.norm_mean = {k: stats[k]['mean'] for k in (S2, ENMAP)}
    cfg.norm_std = {k: stats[k]['std'] for k in (S2, ENMAP)}
    shrink_to_tiny(cfg)
    cfg.custom_imports = dict(imports=['kill_resume_campaign'],
                              allow_failed_imports=False)
    cfg.custom_hooks = [dict(type='KillInCheckpointWriteHook')]
    cfg.log_level = 'INFO'
    path = osp.join(work_dir, 'campaign_cfg.py')
    cfg.dump(path)
    return path


def _env(kill_at_save: int = 0) -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT, osp.join(ROOT, 'tools', 'misc'), env.get('PYTHONPATH', '')])
    env.pop(KILL_AT_SAVE_ENV, None)
    if kill_at_save:
        env[KILL_AT_SAVE_ENV] = str(kill_at_save)
    return env


def _has_checkpoint(work_dir: str) -> bool:
    return osp.isfile(osp.join(work_dir, 'last_checkpoint'))


def start(cfg_file: str, work_dir: str, log_path: str,
          kill_at_save: int = 0) -> subprocess.Popen:
    """Start tools/train.py (resuming when a checkpoint exists)."""
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), cfg_file,
           '--work-dir', work_dir]
    if _has_checkpoint(work_dir):
        cmd.append('--resume')
    log = open(log_path, 'w')
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env=_env(kill_at_save), cwd=ROOT)


#: Logged by mmengine when training is about to start (after building the
#: model and loading / resuming checkpoints).
START_MARK = 'Checkpoints will be saved to'


def started_after(log_path: str, began: float) -> float:
    """Seconds from ``began`` to the start mark of a finished run's log."""
    with open(log_path, errors='replace') as f:
        for line in f:
            if START_MARK in line:
                # mmengine's log prefix: 'MM/DD HH:MM:SS - mmengine - ...'
                stamp = time.strptime(
                    time.strftime('%Y ') + line[:14], '%Y %m/%d %H:%M:%S')
                return max(0.0, time.mktime(stamp) - began)
    return 0.0


def wait_for_start(proc: subprocess.Popen, log_path: str,
                   poll: float = 0.05) -> None:
    """Return once the run logged its start mark (or ended)."""
    while proc.poll() is None:
        with open(log_path, errors='replace') as f:
            if START_MARK in f.read():
                return
        time.sleep(poll)


def phase_of(log_path: str) -> str:
    """Phase of the run when its log ended."""
    with open(log_path, errors='replace') as f:
        lines = f.read().splitlines()
    for line in reversed(lines):
        for phase, pattern in PHASES:
            if pattern.search(line):
                return phase
    return 'start-up'


def final_weights(work_dir: str, epochs: int) -> Dict[str, torch.Tensor]:
    ckpt = torch.load(osp.join(work_dir, f'epoch_{epochs}.pth'),
                      map_location='cpu', weights_only=False)
    return ckpt['state_dict']


def compare(got: Dict[str, torch.Tensor],
            expected: Dict[str, torch.Tensor]) -> Tuple[bool, float]:
    """Whether every tensor is bitwise equal, and the largest difference."""
    if set(got) != set(expected):
        return False, float('inf')
    equal, worst = True, 0.0
    for key, value in expected.items():
        other = got[key]
        if not torch.equal(other, value):
            equal = False
            if value.is_floating_point():
                worst = max(worst, float((other - value).abs().max()))
            else:
                worst = float('inf')
    return equal, worst


def run_campaign(args: argparse.Namespace) -> dict:
    """Run the campaign; return the summary (also written as JSON)."""
    from h2crop.datasets.synthetic import make_synthetic_dataset
    work = osp.abspath(args.work_dir)
    if osp.exists(work):
        if not args.overwrite:
            raise SystemExit(f'{work} exists; pass --overwrite to replace '
                             'it or choose another --work-dir')
        shutil.rmtree(work)
    os.makedirs(work)
    data_root = osp.join(work, 'data')
    make_synthetic_dataset(data_root, args.num_samples, size=args.size,
                           seed=args.seed)
    cfg_file = write_config(work, data_root, args.epochs, args.size)

    ref_dir = osp.join(work, 'reference')
    began = time.time()
    proc = start(cfg_file, ref_dir, osp.join(work, 'reference.log'))
    if proc.wait() != 0:
        raise SystemExit('the uninterrupted reference run failed; see '
                         + osp.join(work, 'reference.log'))
    duration = time.time() - began
    startup = min(started_after(osp.join(work, 'reference.log'), began),
                  duration)
    training = duration - startup
    expected = final_weights(ref_dir, args.epochs)
    print(f'reference run: {duration:.1f} s ({startup:.1f} s start-up)',
          flush=True)

    rng = random.Random(args.seed)
    killed_dir = osp.join(work, 'killed')
    kills: List[dict] = []
    finished: List[dict] = []
    failures: List[str] = []
    attempt = 0
    while len(kills) < args.kills and not failures:
        attempt += 1
        log_path = osp.join(work, f'attempt_{attempt:02d}.log')
        draw = rng.random()
        at_save = rng.randint(1, 2 * args.epochs) if draw < 0.25 else 0
        in_startup = 0.25 <= draw < 0.4
        resumed = _has_checkpoint(killed_dir)
        t0 = time.time()
        proc = start(cfg_file, killed_dir, log_path, kill_at_save=at_save)
        delay = None
        if in_startup:  # while building, loading or resuming
            delay = rng.uniform(0.3, 1.0) * startup
        elif not at_save:  # after start-up: iterations, validation, saves
            wait_for_start(proc, log_path)
            delay = time.time() - t0 + rng.uniform(0.0, 1.0) * training
        try:
            code = proc.wait(timeout=None if delay is None else
                             max(0.0, t0 + delay - time.time()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            code = proc.wait()
        if code == -signal.SIGKILL:
            kill = dict(attempt=attempt, resumed=resumed,
                        moment=(f'checkpoint write #{at_save}' if at_save
                                else f'{delay:.1f} s'),
                        phase=('checkpoint write' if at_save else
                               phase_of(log_path)))
            kills.append(kill)
            print(f'kill {len(kills):2d}: {kill["moment"]:>22s}, '
                  f'{kill["phase"]}' + (' (resumed run)' if resumed else
                                        ''), flush=True)
        elif code == 0:
            equal, worst = compare(final_weights(killed_dir, args.epochs),
                                   expected)
            finished.append(dict(attempt=attempt, equal=equal, worst=worst))
            print(f'run finished before its kill: weights '
                  f'{"equal" if equal else f"differ (max {worst:g})"}; '
                  'starting afresh', flush=True)
            if not equal:
                failures.append(f'{killed_dir}: final weights differ')
            shutil.rmtree(killed_dir)
        else:
            failures.append(f'attempt {attempt} exited with {code} without '
                            f'being killed; see {log_path}')
    if not failures:
        log_path = osp.join(work, 'final.log')
        proc = start(cfg_file, killed_dir, log_path)
        if proc.wait() != 0:
            failures.append(f'the final resume failed; see {log_path}')
        else:
            equal, worst = compare(final_weights(killed_dir, args.epochs),
                                   expected)
            finished.append(dict(attempt='final', equal=equal, worst=worst))
            if not equal:
                failures.append(f'final weights differ (max {worst:g})')
    phases: Dict[str, int] = {}
    for kill in kills:
        phases[kill['phase']] = phases.get(kill['phase'], 0) + 1
    summary = dict(kills=len(kills), resumed_after_kill=sum(
        k['resumed'] for k in kills), phases=phases,
        finished_runs=finished, failures=failures,
        reference_seconds=round(duration, 1))
    with open(osp.join(work, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.kills < 1 or args.epochs < 1:
        print('error: --kills and --epochs must be >= 1', file=sys.stderr)
        return 2
    summary = run_campaign(args)
    equal = sum(r['equal'] for r in summary['finished_runs'])
    print(f'{summary["kills"]} kills ({summary["phases"]}), '
          f'{len(summary["finished_runs"])} finished run(s), {equal} with '
          'weights bitwise equal to the uninterrupted run')
    for failure in summary['failures']:
        print(f'FAILED: {failure}')
    return 1 if summary['failures'] else 0


if __name__ == '__main__':
    sys.exit(main())
