"""Figures people look at rather than read: training curves and predicted-vs-MOS scatters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..eval.plots import pyplot, save_figure


def training_curves(history: list[dict], path: Path) -> Path:
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax1.set(xlabel="epoch", ylabel="weighted MSE (train)", title="training loss")
    ax2.plot(epochs, [h["val_plcc"] for h in history], marker="o", label="PLCC")
    ax2.plot(epochs, [h["val_srocc"] for h in history], marker="s", label="SROCC")
    ax2.set(xlabel="epoch", ylabel="correlation (validation)", title="validation")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = save_figure(fig, path)
    plt.close(fig)
    return path


def scatter(pred, mos, path: Path, title: str, label: str = "MOS") -> Path:
    plt = pyplot()
    pred, mos = np.asarray(pred), np.asarray(mos)
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.scatter(mos, pred, s=6, alpha=0.5)
    lo, hi = 1.0, 10.0
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel=f"{label} (1-10)", ylabel="predicted (1-10)", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = save_figure(fig, path)
    plt.close(fig)
    return path
