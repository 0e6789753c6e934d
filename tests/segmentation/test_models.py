"""The segmentation model's heads, the DSA projection on a label map, and the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from dfem.exceptions import DfemError
from dfem.iel import HeatIEL
from dfem.segmentation.models import Segmenter, confusion, scores
from dfem.spline import project_on_label_map

pytestmark = pytest.mark.usefixtures("one_thread")


def _labels_and_values(seed=0, shape=(2, 9, 11), classes=3):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, shape, generator=generator)
    values = torch.rand(shape[0], classes, *shape[1:], generator=generator, dtype=torch.float64)
    return labels, values


@pytest.mark.parametrize("connectivity", [4, 8])
def test_projection_on_label_map_is_the_region_mean(connectivity):
    labels, x = _labels_and_values()
    y = project_on_label_map(x, labels, connectivity)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    expected = torch.zeros_like(x)
    for b in range(labels.shape[0]):
        for k in range(3):
            regions, count = ndimage.label((labels[b] == k).numpy(), structure)
            for region in range(1, count + 1):
                inside = torch.as_tensor(regions == region)
                for c in range(x.shape[1]):
                    expected[b, c][inside] = x[b, c][inside].mean()
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-14)


def test_projection_on_label_map_gradients_and_errors():
    labels, x = _labels_and_values(shape=(1, 5, 6))
    assert torch.autograd.gradcheck(lambda x: project_on_label_map(x, labels),
                                    x.requires_grad_(True))
    assert torch.autograd.gradgradcheck(lambda x: project_on_label_map(x, labels), x)
    with pytest.raises(DfemError, match="label_map must have shape"):
        project_on_label_map(x, labels[0])
    with pytest.raises(DfemError, match="integer labels"):
        project_on_label_map(x, labels.double())


def test_probabilities_stay_probabilities_under_the_dsa_head():
    model = Segmenter(1, 3, "dsa", width=4, depth=2)
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    log_p = model.log_probabilities(x)
    torch.testing.assert_close(log_p.exp().sum(dim=1), torch.ones(2, 16, 16))
    predicted = log_p.argmax(dim=1)
    # constant on every region of the network's own argmax map
    raw = torch.softmax(model(x), dim=1).argmax(dim=1)
    for b in range(2):
        for k in range(3):
            regions, count = ndimage.label((raw[b] == k).numpy())
            for region in range(1, count + 1):
                values = log_p[b, :, torch.as_tensor(regions == region)]
                assert torch.allclose(values, values[:, :1].expand_as(values))
    assert predicted.shape == (2, 16, 16)


def test_iel_head_acts_in_training_only():
    torch.manual_seed(0)
    model = Segmenter(1, 2, "iel", width=4, depth=2, iel=HeatIEL(dt=0.1, steps=5))
    x = torch.rand(1, 1, 16, 16)
    model.eval()
    torch.testing.assert_close(model(x), model.unet(x), rtol=0, atol=0)
    model.train()
    assert not torch.allclose(model(x), model.unet(x))


def test_scores_against_a_direct_count():
    generator = torch.Generator().manual_seed(3)
    truth = torch.randint(0, 4, (3, 10, 12), generator=generator)
    predicted = torch.where(torch.rand(truth.shape, generator=generator) < 0.7, truth,
                            torch.randint(0, 4, truth.shape, generator=generator))
    result = scores(confusion(predicted, truth, 4))
    t, p = truth.numpy(), predicted.numpy()
    for k in range(4):
        inter = np.sum((t == k) & (p == k))
        assert result["dice"][k] == pytest.approx(2 * inter / (np.sum(t == k) + np.sum(p == k)))
        assert result["iou"][k] == pytest.approx(inter / np.sum((t == k) | (p == k)))
    assert result["dice_mean"] == pytest.approx(np.mean(result["dice"][1:]))
    assert result["pixel_accuracy"] == pytest.approx(np.mean(t == p))
    # an absent class scores 1: nothing to find and nothing found
    assert scores(confusion(truth.clamp(max=1), truth.clamp(max=1), 3))["dice"][2] == 1.0


def test_bad_model_arguments():
    with pytest.raises(DfemError, match="unknown model"):
        Segmenter(1, 3, "crf")
    with pytest.raises(DfemError, match="at least 2"):
        Segmenter(1, 1)
