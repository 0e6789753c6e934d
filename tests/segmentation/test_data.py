"""Segmentation data: synthetic cells (exact masks, deterministic, prefix-stable), PNG folders
read back exactly with clear errors, and the IEL paper's noisy labels (whole grid-aligned
blocks covering the requested fraction)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dfem.exceptions import DfemError
from dfem.segmentation import corrupt_labels, load_png_folder, split, synthetic_cells

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- synthetic_cells


def test_synthetic_cells_shapes_dtypes_and_ranges():
    images, masks = synthetic_cells(8, size=48, num_classes=3, seed=0)
    assert images.shape == (8, 1, 48, 48) and images.dtype == torch.float32
    assert masks.shape == (8, 48, 48) and masks.dtype == torch.int64
    assert images.min() >= 0 and images.max() <= 1
    assert set(masks.unique().tolist()) == {0, 1, 2}
    assert (masks == 0).float().mean() > 0.4  # mostly background, as in microscopy


@pytest.mark.parametrize("num_classes", [2, 4])
def test_synthetic_cells_other_class_counts(num_classes):
    _, masks = synthetic_cells(8, size=32, num_classes=num_classes, seed=1)
    assert set(masks.unique().tolist()) == set(range(num_classes))


def test_synthetic_cells_deterministic_and_seed_dependent():
    a_images, a_masks = synthetic_cells(4, seed=5)
    b_images, b_masks = synthetic_cells(4, seed=5)
    c_images, c_masks = synthetic_cells(4, seed=6)
    assert torch.equal(a_images, b_images) and torch.equal(a_masks, b_masks)
    assert not torch.equal(a_images, c_images) and not torch.equal(a_masks, c_masks)
    # the images of one batch differ from each other too
    assert not torch.equal(a_masks[0], a_masks[1])


def test_synthetic_cells_sample_i_does_not_depend_on_n():
    images, masks = synthetic_cells(10, size=32, seed=2)
    first_images, first_masks = synthetic_cells(3, size=32, seed=2)
    assert torch.equal(images[:3], first_images) and torch.equal(masks[:3], first_masks)


def test_synthetic_cells_masks_match_the_images():
    images, masks = synthetic_cells(8, seed=0)
    values = images[:, 0]
    background, bright, textured = (values[masks == c].mean() for c in range(3))
    assert bright > textured + 0.1 > background + 0.1  # class 1 bright, class 2 dimmer
    # class 2 blobs are larger on average than class 1 blobs
    assert (masks == 2).sum() > (masks == 1).sum()
    # but no single threshold separates the classes: intensity ranges overlap
    assert values[masks == 1].min() < values[masks == 2].max()


def test_synthetic_cells_argument_errors():
    with pytest.raises(DfemError, match="n must"):
        synthetic_cells(0)
    with pytest.raises(DfemError, match="num_classes"):
        synthetic_cells(2, num_classes=1)
    with pytest.raises(DfemError, match="size"):
        synthetic_cells(2, size=4)
    with pytest.raises(DfemError, match="seed"):
        synthetic_cells(2, seed=-1)


# ---------------------------------------------------------------- load_png_folder


def _write_folder(root, names=("b", "a", "c"), height=12, width=16, rgb=False):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    pixels, ids = {}, {}
    for name in names:
        shape = (height, width, 3) if rgb else (height, width)
        pixels[name] = rng.integers(0, 256, shape, dtype=np.uint8)
        ids[name] = rng.integers(0, 3, (height, width), dtype=np.uint8)
        Image.fromarray(pixels[name]).save(root / "images" / f"{name}.png")
        Image.fromarray(ids[name]).save(root / "masks" / f"{name}.png")
    return pixels, ids


def test_load_png_folder_reads_back_exactly(tmp_path):
    pixels, ids = _write_folder(tmp_path)
    images, masks, names = load_png_folder(tmp_path, num_classes=3)
    assert names == ["a", "b", "c"]
    assert images.shape == (3, 1, 12, 16) and images.dtype == torch.float32
    assert masks.shape == (3, 12, 16) and masks.dtype == torch.int64
    for i, name in enumerate(names):
        expected = torch.as_tensor(pixels[name], dtype=torch.float32) / 255
        assert torch.equal(images[i, 0], expected)
        assert torch.equal(masks[i], torch.as_tensor(ids[name], dtype=torch.int64))


def test_load_png_folder_rgb_gives_three_channels(tmp_path):
    pixels, _ = _write_folder(tmp_path, rgb=True)
    images, _, names = load_png_folder(tmp_path, num_classes=3, grayscale=False)
    assert images.shape == (3, 3, 12, 16)
    expected = torch.as_tensor(pixels[names[0]], dtype=torch.float32).permute(2, 0, 1) / 255
    assert torch.equal(images[0], expected)
    grey, _, _ = load_png_folder(tmp_path, num_classes=3)
    assert grey.shape == (3, 1, 12, 16)


def test_load_png_folder_missing_subfolders_and_empty_folder(tmp_path):
    with pytest.raises(DfemError, match="no images/ subfolder"):
        load_png_folder(tmp_path, 3)
    (tmp_path / "images").mkdir()
    with pytest.raises(DfemError, match="no masks/ subfolder"):
        load_png_folder(tmp_path, 3)
    (tmp_path / "masks").mkdir()
    with pytest.raises(DfemError, match="no .png images"):
        load_png_folder(tmp_path, 3)


def test_load_png_folder_image_without_mask(tmp_path):
    _write_folder(tmp_path, names=("a", "b", "c"))
    (tmp_path / "masks" / "b.png").unlink()
    (tmp_path / "masks" / "c.png").unlink()
    with pytest.raises(DfemError, match=r"2 of 3 images have no mask.*b\.png, c\.png"):
        load_png_folder(tmp_path, 3)


def test_load_png_folder_size_mismatch_between_image_and_mask(tmp_path):
    _write_folder(tmp_path)
    Image.fromarray(np.zeros((10, 16), np.uint8)).save(tmp_path / "masks" / "b.png")
    with pytest.raises(DfemError, match=r"b\.png is 12x16 .* mask is 10x16"):
        load_png_folder(tmp_path, 3)


def test_load_png_folder_images_of_different_sizes(tmp_path):
    _write_folder(tmp_path, names=("a", "b"))
    _write_folder(tmp_path, names=("c",), height=20, width=20)
    with pytest.raises(DfemError, match=r"different sizes.*c\.png is 20x20.*resize"):
        load_png_folder(tmp_path, 3)


def test_load_png_folder_class_id_out_of_range(tmp_path):
    _write_folder(tmp_path)
    ids = np.zeros((12, 16), np.uint8)
    ids[3, 4] = 7
    Image.fromarray(ids).save(tmp_path / "masks" / "c.png")
    with pytest.raises(DfemError, match=r"c\.png' holds class id 7.*num_classes=8"):
        load_png_folder(tmp_path, 3)


def test_load_png_folder_mask_with_several_channels(tmp_path):
    _write_folder(tmp_path)
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(DfemError, match=r"a\.png' has mode RGB with 3 channels"):
        load_png_folder(tmp_path, 3)


def test_load_png_folder_unreadable_file(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "images" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DfemError, match=r"cannot read .*a\.png"):
        load_png_folder(tmp_path, 3)


# ---------------------------------------------------------------- corrupt_labels


@pytest.mark.parametrize("block", [2, 3, 5])
@pytest.mark.parametrize("fraction", [0.1, 0.37])
def test_aligned_blocks_cover_the_fraction_in_whole_grid_cells(block, fraction):
    size = 12 * block if block != 5 else 40  # divisible by the block
    zeros = torch.zeros(6, size, size, dtype=torch.int64)
    noisy = corrupt_labels(zeros, 3, block=block, fraction=fraction, seed=0,
                           exclude_current=True)
    changed = noisy != 0
    # every changed pixel lies in a selected block; the area is the nearest whole block count
    blocks_wanted = fraction * size * size / block**2
    blocks_changed = changed.sum(dim=(1, 2)) / block**2
    assert torch.all((blocks_changed - blocks_wanted).abs() <= 0.5)
    # each grid cell is either untouched or entirely changed to one class
    cells = noisy.reshape(6, size // block, block, size // block, block).transpose(2, 3)
    cells = cells.reshape(6, size // block, size // block, block * block)
    hit = (cells != 0).any(-1)
    assert torch.all((cells[hit] == cells[hit][:, :1]).all(-1))
    assert torch.all(cells[hit] != 0)


def test_aligned_blocks_are_clipped_at_the_border():
    zeros = torch.zeros(2, 11, 7, dtype=torch.int64)
    noisy = corrupt_labels(zeros, 2, block=3, fraction=1.0, exclude_current=True)
    assert torch.all(noisy == 1)  # every cell, clipped ones included, is chosen and changed


def test_uniform_classes_may_keep_a_block_and_exclude_current_changes_it():
    masks = synthetic_cells(4, size=32, seed=0)[1]
    uniform = corrupt_labels(masks, 3, block=2, fraction=0.5, seed=1)
    assert 0 < (uniform != masks).float().mean() < 0.5  # a third of the blocks keep their class
    changed = corrupt_labels(masks, 3, block=2, fraction=0.5, seed=1, exclude_current=True)
    anchors = changed[:, ::2, ::2] != masks[:, ::2, ::2]
    assert abs(anchors.float().mean().item() - 0.5) < 1e-6  # every chosen block's corner changes


def test_corruption_is_deterministic_and_independent_across_the_batch():
    zeros = torch.zeros(4, 32, 32, dtype=torch.int64)
    a = corrupt_labels(zeros, 3, block=2, seed=3)
    assert torch.equal(a, corrupt_labels(zeros, 3, block=2, seed=3))
    assert not torch.equal(a, corrupt_labels(zeros, 3, block=2, seed=4))
    for i in range(1, 4):  # same input, different noise in each image
        assert not torch.equal(a[0], a[i])
    # image i's noise depends on (seed, i) only, not on the batch size
    assert torch.equal(a[:2], corrupt_labels(zeros[:2], 3, block=2, seed=3))


@pytest.mark.parametrize("block", [1, 2, 3, 5])
@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_random_position_blocks_cover_the_fraction(block, fraction):
    zeros = torch.zeros(3, 40, 36, dtype=torch.int64)
    noisy = corrupt_labels(zeros, 3, block=block, fraction=fraction, seed=0, aligned=False,
                           exclude_current=True)
    covered = (noisy != 0).sum(dim=(1, 2))
    target = round(fraction * 40 * 36)
    assert torch.all(covered >= target) and torch.all(covered < target + block * block)


def test_random_positions_are_not_grid_aligned():
    zeros = torch.zeros(1, 60, 60, dtype=torch.int64)
    noisy = corrupt_labels(zeros, 2, block=3, seed=0, aligned=False, exclude_current=True)
    rows = torch.nonzero(noisy[0].any(dim=1)).flatten()
    assert set((rows % 3).tolist()) == {0, 1, 2}


def test_fraction_zero_keeps_the_masks_and_the_input_is_not_modified():
    masks = synthetic_cells(2, size=32, seed=0)[1].to(torch.int32)
    before = masks.clone()
    for aligned in (True, False):
        assert torch.equal(corrupt_labels(masks, 3, fraction=0.0, aligned=aligned), masks)
        noisy = corrupt_labels(masks, 3, fraction=0.2, aligned=aligned)
        assert noisy.dtype == torch.int32 and not torch.equal(noisy, masks)
        assert torch.equal(masks, before)


def test_corrupt_labels_argument_errors():
    masks = torch.zeros(2, 8, 8, dtype=torch.int64)
    with pytest.raises(DfemError, match="fraction must be a number in"):
        corrupt_labels(masks, 3, fraction=1.5)
    with pytest.raises(DfemError, match="fraction"):
        corrupt_labels(masks, 3, fraction=-0.1)
    with pytest.raises(DfemError, match="block must be an integer >= 1"):
        corrupt_labels(masks, 3, block=0)
    with pytest.raises(DfemError, match=r"shape \(n, H, W\).*\(8, 8\)"):
        corrupt_labels(masks[0], 3)
    with pytest.raises(DfemError, match="integer tensor.*float32"):
        corrupt_labels(masks.float(), 3)
    with pytest.raises(DfemError, match="integer tensor"):
        corrupt_labels(masks.numpy(), 3)
    too_large = masks.clone()
    too_large[1, 2, 3] = 3
    with pytest.raises(DfemError, match=r"0\.\.2 .* got 0\.\.3"):
        corrupt_labels(too_large, 3)
    with pytest.raises(DfemError, match="num_classes"):
        corrupt_labels(masks, 1)


# ---------------------------------------------------------------- split


def test_split_partitions_the_samples():
    images, masks = synthetic_cells(10, size=16, seed=0)
    (train_images, train_masks), (val_images, val_masks) = split(images, masks, 0.3, seed=0)
    assert len(train_images) == 7 and len(val_images) == 3
    together = torch.cat([train_images, val_images])
    assert torch.equal(torch.sort(together.flatten(1).sum(1)).values,
                       torch.sort(images.flatten(1).sum(1)).values)
    # masks travel with their images
    for image, mask in zip(val_images, val_masks, strict=True):
        i = int(torch.nonzero((images == image).flatten(1).all(1))[0])
        assert torch.equal(masks[i], mask)
    with pytest.raises(DfemError, match="val_fraction"):
        split(images, masks, 1.0)


def test_load_png_folder_palette_masks_and_16_bit_images(tmp_path):
    _write_folder(tmp_path, names=("a",))
    ids = np.tile(np.arange(3, dtype=np.uint8), (12, 6))[:, :16]
    palette = Image.fromarray(ids).convert("P")
    palette.save(tmp_path / "masks" / "a.png")
    deep = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "images" / "a.png")
    images, masks, _ = load_png_folder(tmp_path, 3)
    assert torch.equal(masks[0], torch.as_tensor(ids, dtype=torch.int64))
    assert torch.equal(images[0, 0], torch.as_tensor(deep / 65535, dtype=torch.float32))
