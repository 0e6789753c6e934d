"""Draw docs/figures/spline_fit.png: the 1D spline projection of one noisy signal with
k = 6 pieces of degree 0, 1 and 3, and project_2d on a smoothed random map.

    python docs/figures/make_spline_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dfem.spline import project_2d, spline_fit_1d  # noqa: E402

OUT = Path(__file__).resolve().parent / "spline_fit.png"


def main() -> None:
    rng = np.random.default_rng(3)
    n = 300
    t = np.linspace(0.0, 1.0, n)
    clean = np.where(t < 0.3, 1.0, np.where(t < 0.55, -1.0 + 6 * (t - 0.3), 2.5 - 4 * (t - 0.55)))
    clean = clean + 0.8 * np.sin(9 * t) * (t > 0.75)
    x = torch.tensor(clean + rng.normal(0.0, 0.25, n))

    # blobs of random size on a noisy background: a few components above 0.5
    grid = torch.stack(torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij"), -1)
    centres = torch.tensor(rng.uniform(6, 58, (7, 2)))
    radii = torch.tensor(rng.uniform(3, 9, 7))
    dist2 = (grid[:, :, None, :] - centres).square().sum(-1)
    blobs = torch.exp(-dist2 / (2 * radii**2)).sum(-1).clamp(max=1.0)
    maps = (blobs + torch.tensor(rng.normal(0.0, 0.12, (64, 64)))).float()[None, None]

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    axes[0].plot(t, x.numpy(), ".", ms=2.5, color="0.6", label="signal")
    for degree, colour in zip((0, 1, 3), ("C0", "C1", "C3"), strict=True):
        fit = spline_fit_1d(x, 6, degree)
        axes[0].plot(
            t,
            fit.values.numpy(),
            color=colour,
            lw=1.6,
            label=f"k = 6, degree {degree}: error {fit.error.item():.1f}",
        )
    axes[0].legend(fontsize=8, loc="lower left")
    axes[0].set_title("spline_fit_1d: best 6-piece fits, knots free")
    scale = {"cmap": "viridis", "vmin": float(maps.min()), "vmax": float(maps.max())}
    axes[1].imshow(maps[0, 0].numpy(), **scale)
    axes[1].set_title("input map")
    projected = project_2d(maps, threshold=0.5)
    axes[2].imshow(projected[0, 0].numpy(), **scale)
    axes[2].set_title("project_2d: component means")
    for ax in axes[1:]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    plt.close(fig)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
