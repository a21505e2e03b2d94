"""Class maps with a legend of class names (PNG previews of predictions)."""
from typing import Optional, Sequence

import numpy as np

from .plots import _palette


def level_palette(num_classes: int) -> np.ndarray:
    """Colours of the classes ``0..num_classes - 1`` of a level.

    These are the colours of every h2crop picture; background (0) is black.

    Returns:
        np.ndarray: uint8 (N, 3).
    """
    return _palette(num_classes)


def plot_class_maps(maps: np.ndarray, names: Sequence[Sequence[str]],
                    levels: Sequence[str], out_path: str,
                    nodata: Optional[int] = None,
                    title: Optional[str] = None,
                    max_legend: int = 24) -> str:
    """Save one panel per level, each with a legend of the classes shown.

    Args:
        maps: Class ids (L, H, W).
        names: Per level, the class names (index = id).
        levels: Level names, for the panel titles.
        out_path: PNG file to write.
        nodata: Id drawn white and listed as "nodata" (e.g. 255).
        title: Figure title.
        max_legend: Most frequent classes listed per level.

    Returns:
        ``out_path``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    maps = np.asarray(maps)
    count = maps.shape[0]
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 5.6),
                             squeeze=False)
    for k, ax in enumerate(axes[0]):
        ids = maps[k].astype(np.int64)
        palette = level_palette(len(names[k]))
        missing = ids == nodata if nodata is not None else np.zeros_like(
            ids, dtype=bool)
        rgb = palette[np.clip(ids, 0, len(names[k]) - 1)]  # (H, W, 3)
        rgb[missing] = 255
        ax.imshow(rgb, interpolation='nearest')
        ax.set_title(levels[k])
        ax.set_axis_off()
        present, counts = np.unique(ids[~missing], return_counts=True)
        order = present[np.argsort(-counts)][:max_legend]
        handles = [Patch(color=palette[c] / 255.0,
                         label=f'{c}: {names[k][c]}') for c in order]
        if missing.any():
            handles.append(Patch(facecolor='white', edgecolor='grey',
                                 label='nodata'))
        ax.legend(handles=handles, loc='upper center',
                  bbox_to_anchor=(0.5, -0.02), fontsize=6, ncol=2,
                  frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110, bbox_inches='tight')
    plt.close(fig)
    return out_path
