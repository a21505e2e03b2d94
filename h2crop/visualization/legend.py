"""Class colours and names: legends, paletted PNGs, class tables.

Every h2crop picture and map of class ids uses :func:`level_palette`: the
previews and legends of ``tools/infer.py``, the colour tables of its maps,
and the outputs of ``tools/test.py --out / --show-dir``.
"""
import csv
from typing import List, Optional, Sequence

import numpy as np

from .plots import _palette

#: Columns of a class table (:func:`write_class_table`).
CLASS_TABLE_COLUMNS = ('id', 'name', 'red', 'green', 'blue')


def level_palette(num_classes: int) -> np.ndarray:
    """Colours of the classes ``0..num_classes - 1`` of a level.

    These are the colours of every h2crop picture; background (0) is black.

    Returns:
        np.ndarray: uint8 (N, 3).
    """
    return _palette(num_classes)


def class_table(names: Sequence[str]) -> List[List[object]]:
    """``[id, name, red, green, blue]`` per class of a level.

    Args:
        names: The level's class names (index = id).
    """
    palette = level_palette(len(names))
    return [[cid, name] + [int(v) for v in palette[cid]]
            for cid, name in enumerate(names)]


def write_class_table(path: str, names: Sequence[str]) -> str:
    """Write a level's class ids, names and colours as CSV.

    Returns:
        ``path``.
    """
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(CLASS_TABLE_COLUMNS)
        writer.writerows(class_table(names))
    return path


def write_palette_png(ids: np.ndarray, names: Sequence[str],
                      path: str) -> str:
    """Save class ids as a paletted PNG in the level's colours.

    Pixel values stay the class ids (a reader gets them back unchanged);
    the palette gives every id of the level its colour, ids beyond the
    level (e.g. nodata 255) are transparent.

    Args:
        ids: Class ids (H, W), values 0..255.
        names: The level's class names (index = id).
        path: PNG file to write.

    Returns:
        ``path``.
    """
    from PIL import Image
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.size and (ids.min() < 0 or ids.max() > 255):
        raise ValueError(f'expected (H, W) ids in 0..255, got shape '
                         f'{ids.shape}')
    count = min(len(names), 256)
    colours = np.zeros((256, 3), np.uint8)
    colours[:count] = level_palette(len(names))[:count]
    image = Image.fromarray(ids.astype(np.uint8), mode='P')
    image.putpalette(colours.reshape(-1).tolist())
    alpha = bytes([255] * count + [0] * (256 - count))
    image.save(path, transparency=alpha)
    return path


def legend_handles(ids: np.ndarray, names: Sequence[str],
                   max_legend: int = 24, nodata: Optional[int] = None
                   ) -> list:
    """Legend entries of the classes present in ``ids``, most frequent first.

    Args:
        ids: Class ids of any shape.
        names: The level's class names (index = id).
        max_legend: Most entries.
        nodata: Id listed as "nodata" (white) when present.

    Returns:
        matplotlib ``Patch`` handles labelled ``'<id>: <name>'``.
    """
    from matplotlib.patches import Patch
    ids = np.asarray(ids).astype(np.int64)
    missing = ids == nodata if nodata is not None else np.zeros_like(
        ids, dtype=bool)
    palette = level_palette(max(len(names), int(ids.max(initial=0)) + 1))
    present, counts = np.unique(ids[~missing], return_counts=True)
    order = present[np.argsort(-counts, kind='stable')][:max_legend]
    handles = [Patch(color=palette[c] / 255.0,
                     label=f'{c}: {names[c] if c < len(names) else "?"}')
               for c in order]
    if missing.any():
        handles.append(Patch(facecolor='white', edgecolor='grey',
                             label='nodata'))
    return handles


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
        handles = legend_handles(ids, names[k], max_legend, nodata)
        ax.legend(handles=handles, loc='upper center',
                  bbox_to_anchor=(0.5, -0.02), fontsize=6, ncol=2,
                  frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110, bbox_inches='tight')
    plt.close(fig)
    return out_path
