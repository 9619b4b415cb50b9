"""Figures and tables every experiment writes: learning curves, image grids, Markdown/CSV tables.

Matplotlib runs headless (Agg), so experiments work on servers and in CI.
"""
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import torch  # noqa: E402

from hw3.files import markdown_table  # noqa: E402


def save_curves(curves: dict, path, xlabel: str = "iteration", ylabel: str = "loss", title: str = "",
                x=None) -> Path:
    """Plot each ``name -> list of values`` of ``curves`` on one set of axes and save a PNG.

    ``x`` is an optional shared list of x positions (default 0, 1, 2, ...).
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(x if x is not None else range(len(values)), values, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if len(curves) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def save_image_grid(images: torch.Tensor, path, nrow: int, title: str = "", row_labels=None) -> Path:
    """Save images (N,C,H,W) or (N,H*W) of square grayscale digits, values in [0,1], as a grid PNG
    with ``nrow`` images per row; ``row_labels`` optionally names each row."""
    images = images.detach().float().cpu()
    if images.dim() == 2:
        side = int(images.shape[1] ** 0.5)
        images = images.view(-1, 1, side, side)
    rows = (len(images) + nrow - 1) // nrow
    fig, axes = plt.subplots(rows, nrow, figsize=(nrow * 0.8, rows * 0.8 + (0.4 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            image = images[i].clamp(0, 1).permute(1, 2, 0).squeeze(-1).numpy()
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    if row_labels is not None:
        for row, label in enumerate(row_labels):
            axes[row, 0].text(-0.3, 0.5, str(label), transform=axes[row, 0].transAxes, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return save_figure(fig, path)


def save_figure(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_table(header: list, rows: list, path_stem) -> tuple:
    """Write ``rows`` under ``header`` as ``<path_stem>.md`` (Markdown) and ``<path_stem>.csv``."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(markdown_table(header, rows) + "\n")
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return stem.with_suffix(".md"), stem.with_suffix(".csv")
