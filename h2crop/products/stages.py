"""Resumable stages: a stage whose outputs exist and match is skipped.

Turning products into tiles takes several long stages (composites, cube,
tiles, statistics). Each stage is described by a fingerprint (its inputs'
files -- path, size, modification time -- and its options) and the files it
writes. After a stage has run, a manifest ``<work>/.stages/<name>.json``
records the fingerprint, the outputs' sizes and modification times and the
stage's summary. A later run

* skips the stage when the manifest's fingerprint equals the new one and
  every output is still as recorded (the summary is reused);
* refuses, unless ``overwrite``, when outputs exist that no matching
  manifest vouches for (other inputs or options, changed files, or an
  interrupted run), naming what differs;
* runs it otherwise (and with ``overwrite``, replacing the outputs).

Nothing a user made is replaced without ``--overwrite``.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .errors import ProductError

#: Folder of the manifests inside a work folder.
MANIFEST_DIR = '.stages'


def file_state(path: str) -> Optional[List[int]]:
    """``[size, mtime_ns]`` of a file, or None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def input_state(path: str) -> Dict[str, Any]:
    """What identifies an input: a file's size and time, a folder's files.

    A folder (a SAFE product, a folder of products) is summarised by the
    number, total size and latest modification of the files below it, so
    a product added, removed or rewritten changes its state.
    """
    path = osp.abspath(path)
    if osp.isfile(path):
        return dict(path=path, file=file_state(path))
    if not osp.isdir(path):
        return dict(path=path, missing=True)
    count, size, latest = 0, 0, 0
    for folder, _, files in os.walk(path):
        for name in files:
            state = file_state(osp.join(folder, name))
            if state is None:
                continue
            count += 1
            size += state[0]
            latest = max(latest, state[1])
    return dict(path=path, files=count, size=size, latest=latest)


@dataclass
class Stage:
    """One stage of a pipeline.

    Args:
        name: Short name (``'s2'``, ``'enmap'``, ``'tiles'``, ...), also the
            manifest's file name.
        inputs: Files and folders it reads.
        options: Everything else its result depends on (JSON-able).
        outputs: Files it writes (their presence decides skip / refuse).
        run: Called as ``run(overwrite)``; returns the stage's summary
            (JSON-able).
    """

    name: str
    inputs: Sequence[str]
    options: Mapping[str, Any]
    outputs: Sequence[str]
    run: Callable[[bool], Dict[str, Any]]
    fingerprint: Dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.fingerprint = dict(
            inputs=[input_state(p) for p in self.inputs],
            options=json.loads(json.dumps(self.options, default=str)))


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> List[str]:
    """Which inputs or options of two fingerprints differ."""
    out = []
    old_in = {i['path']: i for i in old.get('inputs', [])}
    new_in = {i['path']: i for i in new.get('inputs', [])}
    for path in sorted(set(old_in) | set(new_in)):
        if old_in.get(path) != new_in.get(path):
            out.append(f'input {path}')
    old_opt, new_opt = old.get('options', {}), new.get('options', {})
    for key in sorted(set(old_opt) | set(new_opt)):
        if old_opt.get(key) != new_opt.get(key):
            out.append(f'option {key} ({old_opt.get(key)!r} -> '
                       f'{new_opt.get(key)!r})')
    return out


class StageRunner:
    """Runs stages in a work folder, skipping those already done.

    Args:
        work_dir: Folder of the outputs; manifests go to
            ``work_dir/.stages``.
        overwrite: Re-run stages whose outputs exist but do not match.
        log: Called with one line per stage (skipped / run / done).
    """

    def __init__(self, work_dir: str, overwrite: bool = False,
                 log: Callable[[str], None] = lambda msg: None) -> None:
        self.work_dir = work_dir
        self.overwrite = overwrite
        self.log = log
        self.done: Dict[str, Dict[str, Any]] = {}
        self.skipped: List[str] = []

    def manifest_path(self, name: str) -> str:
        """Where a stage's manifest lives."""
        return osp.join(self.work_dir, MANIFEST_DIR, f'{name}.json')

    def _load(self, name: str) -> Optional[Dict[str, Any]]:
        path = self.manifest_path(name)
        if not osp.isfile(path):
            return None
        try:
            with open(path, encoding='utf-8') as f:
                return json.load(f)
        except (OSError, ValueError):
            return None  # a broken manifest vouches for nothing

    def up_to_date(self, stage: Stage) -> Optional[Dict[str, Any]]:
        """The saved summary when ``stage`` need not run, else None."""
        saved = self._load(stage.name)
        if saved is None or saved.get('fingerprint') != stage.fingerprint:
            return None
        recorded = saved.get('outputs', {})
        if sorted(recorded) != sorted(osp.abspath(p) for p in stage.outputs):
            return None
        for path, state in recorded.items():
            if file_state(path) != state:
                return None
        return saved.get('summary', {})

    def run(self, stage: Stage) -> Dict[str, Any]:
        """Run ``stage`` unless it is up to date; return its summary.

        Raises:
            ProductError: When outputs exist that no matching manifest
                vouches for and ``overwrite`` is False.
        """
        summary = self.up_to_date(stage)
        if summary is not None:
            self.log(f'stage {stage.name}: up to date, skipped '
                     f'({self.manifest_path(stage.name)})')
            self.skipped.append(stage.name)
            self.done[stage.name] = summary
            return summary
        present = [p for p in stage.outputs if osp.exists(p)]
        if present and not self.overwrite:
            saved = self._load(stage.name)
            why = 'no record of the run that made them (interrupted?)'
            if saved is not None:
                diffs = _differences(saved.get('fingerprint', {}),
                                     stage.fingerprint)
                why = ('made from other ' + '; '.join(diffs) if diffs else
                       'changed since they were made')
            raise ProductError(
                f'stage {stage.name}: {present[0]} (and '
                f'{len(present) - 1} more) exist, {why}; pass --overwrite '
                'to make them again')
        self.log(f'stage {stage.name}: running')
        summary = stage.run(self.overwrite)
        missing = [p for p in stage.outputs if not osp.exists(p)]
        if missing:
            raise ProductError(f'stage {stage.name} did not write '
                               f'{missing[0]}')
        record = dict(
            fingerprint=stage.fingerprint, summary=summary,
            outputs={osp.abspath(p): file_state(p) for p in stage.outputs})
        os.makedirs(osp.dirname(self.manifest_path(stage.name)),
                    exist_ok=True)
        tmp = self.manifest_path(stage.name) + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(record, f, indent=1, default=str)
        os.replace(tmp, self.manifest_path(stage.name))
        self.done[stage.name] = summary
        return summary
