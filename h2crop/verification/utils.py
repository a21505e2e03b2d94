"""Helpers shared by the reference checks."""
import os.path as osp


def find_reference_case_dir(reference_dir: str, subdir: str,
                            marker: str) -> str:
    """Return the folder holding a reference case.

    That is ``reference_dir`` or ``reference_dir/subdir``, whichever holds
    ``marker`` (a case description file).

    Raises:
        FileNotFoundError: When neither does.
    """
    for candidate in (reference_dir, osp.join(reference_dir, subdir)):
        if osp.isfile(osp.join(candidate, marker)):
            return candidate
    raise FileNotFoundError(
        f'{marker} not found in {reference_dir} or its {subdir}/ folder')
