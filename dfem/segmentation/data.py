"""Segmentation data: synthetic cell images, PNG folders, and the IEL paper's noisy labels.

:func:`synthetic_cells` draws microscopy-like images with exact masks, so a segmentation
network can be trained and scored without downloading anything. :func:`load_png_folder`
reads a user's own data laid out as ``folder/images/NAME.png`` and ``folder/masks/NAME.png``.
:func:`corrupt_labels` is the noisy-label corruption of the Inverse Evolution Layers paper:
small ``block x block`` windows covering about 10% of the image set to a random class (the
authors' code uses grid-aligned blocks, the default here). :func:`split` divides a data set
into training and validation parts.

Randomness is drawn per image from a generator seeded with ``(seed, i)``, so image ``i``
does not depend on how many images are generated or corrupted with it.
"""

from __future__ import annotations

import math
from numbers import Real
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from dfem.exceptions import DfemError

_CELLS, _NOISE, _SPLIT = 1, 2, 3  # separate random streams for the three functions


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise DfemError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _rng(stream: int, seed, i: int) -> np.random.Generator:
    return np.random.default_rng([stream, _check_int("seed", seed, 0), i])


def synthetic_cells(n: int, size: int = 64, num_classes: int = 3, seed: int = 0):
    """``n`` synthetic fluorescence-microscopy images of cells with their exact masks.

    Each image holds 3 to 12 blobs: ellipses of random size, aspect ratio and orientation
    whose radius is modulated by three random Fourier terms (a wobbly boundary). Blobs may
    touch and overlap; a pixel gets the class of the last blob drawn over it. The classes
    differ in appearance, not by a single threshold: class 1 is bright, small and smooth
    (a dome); the last class is dimmer, about 1.5 times larger and has a ringed, granular
    interior; classes in between interpolate. One blob in five is faint (low contrast).
    The scene is blurred slightly (a microscope's point spread), multiplied by a smooth
    uneven illumination, and Gaussian noise of a random level (sigma 0.01 to 0.07) is
    added. Each image draws every foreground class at least once when it has enough blobs
    (always for ``num_classes <= 4``).

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Image height and width in pixels (at least 16); blob radii scale with it.
    num_classes : int
        Number of classes including the background (class 0); at least 2.
    seed : int
        Image ``i`` is drawn from a generator seeded with ``(seed, i)``, so it is the
        same whatever ``n`` is.

    Returns
    -------
    images : torch.Tensor
        float32, shape (n, 1, size, size), values in [0, 1].
    masks : torch.Tensor
        int64, shape (n, size, size), values in ``0 .. num_classes - 1``.
    """
    n = _check_int("n", n, 1)
    size = _check_int("size", size, 16)
    num_classes = _check_int("num_classes", num_classes, 2)
    _check_int("seed", seed, 0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.empty((n, 1, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=np.int64)
    for i in range(n):
        images[i, 0], masks[i] = _one_cell_image(_rng(_CELLS, seed, i), x, y, num_classes)
    return torch.from_numpy(images), torch.from_numpy(masks)


def _one_cell_image(rng, x, y, num_classes):
    size = x.shape[0]
    count = int(rng.integers(3, 13))
    everyone = rng.permutation(np.arange(1, num_classes))[:count]  # each class once, if room
    classes = rng.permutation(np.concatenate(
        [everyone, rng.integers(1, num_classes, count - len(everyone))]))
    scene = np.full(x.shape, rng.uniform(0.05, 0.2))
    mask = np.zeros(x.shape, dtype=np.int64)
    for c in classes:
        t = (c - 1) / max(num_classes - 2, 1)  # 0 for class 1, 1 for the last class
        radius = size * rng.uniform(0.06, 0.11) * (1.0 + 0.5 * t)
        aspect, angle = rng.uniform(0.55, 1.0), rng.uniform(0.0, math.pi)
        cx, cy = rng.uniform(0.0, size, 2)
        reach = 1.3 * radius  # the blob lies inside this box (the wobble adds at most 27%)
        box = (slice(max(int(cy - reach), 0), max(int(cy + reach) + 2, 0)),
               slice(max(int(cx - reach), 0), max(int(cx + reach) + 2, 0)))
        xb, yb = x[box], y[box]
        u = (xb - cx) * math.cos(angle) + (yb - cy) * math.sin(angle)
        v = (yb - cy) * math.cos(angle) - (xb - cx) * math.sin(angle)
        rho, phi = np.hypot(u, v / aspect) / radius, np.arctan2(v / aspect, u)
        wobble = 1.0 + sum(rng.uniform(0.0, 0.09) * np.cos(k * phi + rng.uniform(0, 2 * math.pi))
                           for k in (2, 3, 5))
        s = rho / wobble  # 0 at the centre, 1 on the boundary
        inside = s < 1.0
        brightness = rng.uniform(0.5 - 0.2 * t, 0.9 - 0.3 * t)
        if rng.random() < 0.2:
            brightness *= 0.4
        dome = 1.0 - 0.25 * s**2
        ring = 0.5 + 0.5 * np.cos(2 * math.pi * (1.2 + 0.8 * t) * s + rng.uniform(0, 2 * math.pi))
        direction = rng.uniform(0, 2 * math.pi, 6)
        wavenumber = 2 * math.pi / rng.uniform(2.0, 4.0, 6)
        grain = np.cos((np.cos(direction) * wavenumber)[:, None, None] * xb
                       + (np.sin(direction) * wavenumber)[:, None, None] * yb
                       + rng.uniform(0, 2 * math.pi, 6)[:, None, None]).mean(axis=0)
        profile = dome * (1.0 - 0.45 * t * ring) + 0.25 * t * grain
        scene[box] = np.where(inside, brightness * profile, scene[box])
        mask[box][inside] = c
    scene = gaussian_filter(scene, rng.uniform(0.5, 1.2), mode="reflect")
    gx, gy, q = rng.uniform(-0.4, 0.4, 2).tolist() + [rng.uniform(-0.6, 0.3)]
    xs, ys = x / size - 0.5, y / size - 0.5
    illumination = 1.0 + gx * xs + gy * ys + q * (xs**2 + ys**2)
    image = scene * illumination + rng.normal(0.0, rng.uniform(0.01, 0.07), x.shape)
    return np.clip(image, 0.0, 1.0), mask


def load_png_folder(folder, num_classes: int, grayscale: bool = True):
    """Read a segmentation data set from ``folder/images/*.png`` and ``folder/masks/*.png``.

    Every image ``images/NAME.png`` needs a mask ``masks/NAME.png`` of the same size: one
    channel (8-bit grey ``L``, palette ``P`` or 16-bit), each pixel a class id in
    ``0 .. num_classes - 1``. All images must have one size; masks without an image are ignored.

    Parameters
    ----------
    folder : str or Path
        The folder that holds ``images/`` and ``masks/``.
    num_classes : int
        Number of classes including the background; at least 2.
    grayscale : bool
        Convert images to one grey channel (True) or to three RGB channels (False).

    Returns
    -------
    images : torch.Tensor
        float32, shape (n, C, H, W), C = 1 or 3, scaled to [0, 1] (8-bit values / 255,
        16-bit values / 65535).
    masks : torch.Tensor
        int64, shape (n, H, W).
    names : list of str
        The sorted file names without ``.png``; ``names[i]`` belongs to image ``i``.
    """
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib
    num_classes = _check_int("num_classes", num_classes, 2)
    folder = Path(folder)
    for sub in ("images", "masks"):
        if not (folder / sub).is_dir():
            raise DfemError(
                f"{str(folder)!r} has no {sub}/ subfolder; put the images in "
                f"{folder / 'images'}/NAME.png and the masks in {folder / 'masks'}/NAME.png."
            )

    def pngs(sub):
        return {p.stem: p for p in (folder / sub).iterdir() if p.suffix.lower() == ".png"}

    image_files, mask_files = pngs("images"), pngs("masks")
    names = sorted(image_files)
    if not names:
        raise DfemError(f"no .png images in {str(folder / 'images')!r}; the folder is empty.")
    missing = [name for name in names if name not in mask_files]
    if missing:
        shown = ", ".join(f"{m}.png" for m in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DfemError(
            f"{len(missing)} of {len(names)} images have no mask in {str(folder / 'masks')!r}: "
            f"{shown}; each images/NAME.png needs a masks/NAME.png."
        )

    def read(path):
        try:
            with Image.open(path) as img:
                img.load()
                return img.copy()
        except (UnidentifiedImageError, OSError) as exc:
            raise DfemError(f"cannot read {str(path)!r} as a PNG image: {exc}.") from exc

    images, masks, first = [], [], None
    for name in names:
        img, msk = read(image_files[name]), read(mask_files[name])
        if msk.mode not in ("L", "P", "1", "I", "I;16", "I;16B", "I;16L"):
            raise DfemError(
                f"mask {mask_files[name].name!r} has mode {msk.mode} with "
                f"{len(msk.getbands())} channels; a mask must be one channel (8-bit grey) "
                f"whose pixels hold class ids: save it with Image.fromarray(ids.astype('uint8'))."
            )
        if img.size != msk.size:
            raise DfemError(
                f"image {name}.png is {img.size[1]}x{img.size[0]} (height x width) but its mask "
                f"is {msk.size[1]}x{msk.size[0]}; image and mask must have the same size."
            )
        first = first if images else img.size
        if img.size != first:
            raise DfemError(
                f"images have different sizes: {names[0]}.png is {first[1]}x{first[0]} "
                f"but {name}.png is {img.size[1]}x{img.size[0]} (height x width); resize or "
                f"crop them to one size first."
            )
        ids = np.asarray(msk, dtype=np.int64)
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= num_classes:
            fix = f"pass num_classes={high + 1} or fix the mask" if low >= 0 else "fix the mask"
            raise DfemError(
                f"mask {mask_files[name].name!r} holds class id {high if low >= 0 else low} but "
                f"num_classes={num_classes} allows ids 0..{num_classes - 1}; {fix}."
            )
        if img.mode.startswith("I;16"):
            pixels = np.asarray(img, dtype=np.float64) / 65535.0
            pixels = pixels[..., None] if grayscale else np.repeat(pixels[..., None], 3, -1)
        else:
            pixels = np.asarray(img.convert("L" if grayscale else "RGB"), np.float64) / 255.0
            pixels = pixels.reshape(*pixels.shape[:2], -1)
        images.append(pixels.transpose(2, 0, 1))
        masks.append(ids)
    return (torch.as_tensor(np.stack(images), dtype=torch.float32),
            torch.as_tensor(np.stack(masks)), names)


def corrupt_labels(masks, num_classes: int, block: int = 2, fraction: float = 0.1,
                   seed: int = 0, aligned: bool = True, exclude_current: bool = False):
    """Noisy labels as in the Inverse Evolution Layers paper: random blocks set to random classes.

    With ``aligned=True`` (the authors' code) each image is cut into a grid of
    ``block x block`` cells (cells at the right and bottom border are clipped). A random
    subset of cells is chosen whose total area is the nearest whole number of cells to
    ``fraction`` of the image area, and each chosen cell is filled with one random class.
    With ``aligned=False`` blocks are placed at uniformly random positions (they may
    overlap and are clipped at the border; a later block paints over an earlier one), one
    after another until the pixels they cover first reach ``fraction`` of the image, so
    the covered area exceeds it by less than one block.

    The class of a block is uniform over all ``num_classes``, so a block may keep its
    class by chance (with 3 classes a third of the blocks change nothing on a uniform
    region). With ``exclude_current=True`` the class is uniform over the classes other
    than the one the input mask has at the block's top-left pixel (its first pixel
    inside the image), so that pixel always changes.

    Parameters
    ----------
    masks : torch.Tensor
        Integer class ids, shape (n, H, W), values in ``0 .. num_classes - 1``.
    num_classes : int
        Number of classes including the background; at least 2.
    block : int
        Block edge in pixels; the paper uses 2, 3 and 5.
    fraction : float
        Share of the image area to corrupt, in [0, 1]; the paper uses about 0.1.
    seed : int
        Image ``i`` is corrupted with a generator seeded with ``(seed, i)``.
    aligned : bool
        Grid-aligned blocks (True) or blocks at random positions (False).
    exclude_current : bool
        Always pick a class different from the block's top-left pixel's class.

    Returns
    -------
    torch.Tensor
        The noisy masks: a new tensor of the input's shape, dtype and device.
    """
    num_classes = _check_int("num_classes", num_classes, 2)
    block = _check_int("block", block, 1)
    _check_int("seed", seed, 0)
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0 <= fraction <= 1:
        raise DfemError(f"fraction must be a number in [0, 1] (0.1 is the paper's), got "
                        f"{fraction!r}.")
    _check_masks(masks, num_classes)
    n, height, width = masks.shape
    flat = masks.reshape(n, height * width).cpu().numpy()
    new = np.full(flat.shape, -1, dtype=np.int64)  # -1: pixel keeps its class
    for i in range(n):
        rng = _rng(_NOISE, seed, i)
        draw = _aligned_blocks if aligned else _random_blocks
        pixel_block, anchors = draw(rng, height, width, block, fraction)
        if exclude_current:
            labels = (flat[i, anchors] + rng.integers(1, num_classes, len(anchors))) % num_classes
        else:
            labels = rng.integers(0, num_classes, len(anchors))
        hit = pixel_block >= 0
        new[i, hit] = labels[pixel_block[hit]]
    new = torch.as_tensor(new, device=masks.device).reshape(masks.shape)
    return torch.where(new >= 0, new.to(masks.dtype), masks)


def _check_masks(masks, num_classes):
    if not torch.is_tensor(masks) or masks.ndim != 3 or masks.dtype == torch.bool \
            or masks.dtype.is_floating_point or masks.dtype.is_complex:
        what = (f"a {masks.dtype} tensor of shape {tuple(masks.shape)}" if torch.is_tensor(masks)
                else type(masks).__name__)
        raise DfemError(f"masks must be an integer tensor of shape (n, H, W), got {what}; "
                        f"convert with torch.as_tensor(masks, dtype=torch.int64).")
    if masks.numel() and (int(masks.min()) < 0 or int(masks.max()) >= num_classes):
        raise DfemError(f"mask values must lie in 0..{num_classes - 1} for num_classes="
                        f"{num_classes}, got {int(masks.min())}..{int(masks.max())}.")


def _aligned_blocks(rng, height, width, block, fraction):
    """Block index of each pixel (-1: none) and each chosen block's top-left pixel."""
    rows, cols = -(-height // block), -(-width // block)
    heights = np.minimum(block, height - block * np.arange(rows))
    widths = np.minimum(block, width - block * np.arange(cols))
    order = rng.permutation(rows * cols)
    covered = np.concatenate([[0], np.cumsum(np.outer(heights, widths).ravel()[order])])
    chosen = order[: int(np.argmin(np.abs(covered - fraction * height * width)))]
    slot = np.full(rows * cols, -1)
    slot[chosen] = np.arange(len(chosen))
    cell = (np.arange(height)[:, None] // block) * cols + np.arange(width)[None, :] // block
    anchors = (chosen // cols) * block * width + (chosen % cols) * block
    return slot[cell].ravel(), anchors


def _random_blocks(rng, height, width, block, fraction):
    """Blocks at random positions until their union covers ``fraction`` of the image."""
    target = round(fraction * height * width)
    if target == 0:
        return np.full(height * width, -1), np.zeros(0, dtype=np.int64)
    # a block covers a pixel with probability about p: draw the expected need, double if short
    p = block * block / ((height + block - 1) * (width + block - 1))
    need = -math.log(max(1.0 - fraction, 0.5 / (height * width))) / p
    tops, lefts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    draw = int(1.2 * need) + 8
    offsets = np.arange(block)
    while True:
        tops = np.concatenate([tops, rng.integers(1 - block, height, draw)])
        lefts = np.concatenate([lefts, rng.integers(1 - block, width, draw)])
        r = (tops[:, None, None] + offsets[None, :, None]).repeat(block, 2)
        c = (lefts[:, None, None] + offsets[None, None, :]).repeat(block, 1)
        index = np.broadcast_to(np.arange(len(tops))[:, None, None], r.shape)
        ok = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        pixel, index = r[ok] * width + c[ok], index[ok]
        first = np.full(height * width, len(tops))
        np.minimum.at(first, pixel, index)
        firsts = np.sort(first)
        if firsts[target - 1] < len(tops):
            count = firsts[target - 1] + 1  # blocks placed when the union reaches the target
            break
        draw = len(tops)
    last = np.full(height * width, -1)
    keep = index < count
    np.maximum.at(last, pixel[keep], index[keep])
    anchors = np.clip(tops[:count], 0, None) * width + np.clip(lefts[:count], 0, None)
    return last, anchors


def split(images, masks, val_fraction: float = 0.2, seed: int = 0):
    """Shuffle a data set and cut it into training and validation parts.

    Returns ``(train_images, train_masks), (val_images, val_masks)``; the validation part
    holds ``round(val_fraction * n)`` samples and the training part at least one.
    """
    if len(images) != len(masks):
        raise DfemError(f"images and masks must have the same length, got {len(images)} "
                        f"images and {len(masks)} masks.")
    n = len(images)
    if not 0.0 <= val_fraction < 1.0 or n - round(val_fraction * n) < 1:
        raise DfemError(f"val_fraction must lie in [0, 1) and leave at least one training "
                        f"sample, got {val_fraction!r} for {n} samples.")
    order = torch.as_tensor(_rng(_SPLIT, seed, 0).permutation(n), device=images.device)
    n_val = round(val_fraction * n)
    val, train = order[:n_val], order[n_val:]
    return (images[train], masks[train.to(masks.device)]), (images[val],
                                                            masks[val.to(masks.device)])
