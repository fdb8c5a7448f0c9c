"""The classifiers whose layers thesis ch. 6 inverts: named representations, the thesis's
training recipe, and the global-pooling network's translation invariance."""

import pytest
import torch

from pgm3d.data.images import load_digits
from pgm3d.models import LayerClassifier, train_classifier
from pgm3d.models.classifier import ARCHITECTURES


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_each_layer_has_its_documented_shape(arch):
    net = LayerClassifier((8, 8), 10, arch, channels=5, hidden=7).eval()
    reps = net.representations(torch.randn(3, 64))
    assert tuple(reps) == ARCHITECTURES[arch]
    want = {"conv1": (3, 5, 4, 4), "conv2": (3, 5, 2, 2), "fc1": (3, 7), "fc2": (3, 7),
            "fc3": (3, 7), "logits": (3, 10)}  # fmt: skip
    for name, value in reps.items():
        assert value.shape == want[name], name
    torch.testing.assert_close(
        net(torch.ones(2, 64)), net.representations(torch.ones(2, 64))["logits"]
    )
    assert set(net.representations(torch.randn(2, 64), ["fc3"])) == {"fc3"}


def test_trained_on_digits_it_classifies_well_and_keeps_its_best_validation_weights():
    d = load_digits(dtype=torch.float32)
    p = torch.randperm(len(d), generator=torch.Generator().manual_seed(0))
    tr, va, te = p[:1200], p[1200:1437], p[1437:]
    net = train_classifier(d.x[tr], d.labels[tr], valid=(d.x[va], d.labels[va]), epochs=40)
    assert net.accuracy(d.x[te], d.labels[te]) > 0.95
    best = max(acc for _, acc in net.history)
    assert net.accuracy(d.x[va], d.labels[va]) == pytest.approx(best)
    early = train_classifier(d.x[tr], d.labels[tr], steps=0)
    assert early.steps == 0 and early.accuracy(d.x[te], d.labels[te]) < 0.5


def test_global_max_pooling_forgets_where_a_feature_is():
    """A pattern moved across a blank canvas (by a multiple of the pooling stride, away from
    the borders, where zero padding differs from the background's response): the pooled
    network's FC3 sees only each feature's maximum and does not change; the plain
    convolutional network's does."""
    torch.manual_seed(0)
    img = torch.zeros(1, 16, 16)
    img[0, 6:8, 6:8] = torch.rand(2, 2)
    moved = torch.roll(img, shifts=(2, 2), dims=(1, 2))
    x = torch.stack([img, moved]).reshape(2, 256)
    change = {}
    for arch in ("conv", "conv-pool"):
        torch.manual_seed(1)
        net = LayerClassifier((16, 16), 10, arch, channels=8, hidden=16).eval()
        fc3 = net.representations(x, ["fc3"])["fc3"]
        change[arch] = float((fc3[0] - fc3[1]).norm() / fc3[0].norm().clamp_min(1e-12))
    assert change["conv-pool"] < 1e-6 < change["conv"]


def test_bad_inputs():
    with pytest.raises(ValueError, match="arch must be"):
        LayerClassifier(arch="resnet")
    with pytest.raises(ValueError, match="divisible by 4"):
        LayerClassifier((6, 6))
    net = LayerClassifier()
    with pytest.raises(ValueError, match="not \\['fc1'\\]"):
        net.representations(torch.randn(1, 64), ["fc1"])
    with pytest.raises(ValueError, match="x must be"):
        net.representations(torch.randn(1, 63))
    with pytest.raises(ValueError, match="rows"):
        train_classifier(torch.randn(4, 64), torch.zeros(3, dtype=torch.long))


def test_the_mse_inversion_recovers_what_its_representation_determines():
    """From the logits of a trained classifier the MSE decoder recovers the digits' mean shapes
    (error well below the pixel variance); from an uninformative constant it can only predict
    the mean image."""
    from pgm3d.models import train_mse_inversion

    d = load_digits(dtype=torch.float32)
    x, y = d.x[:1000], d.labels[:1000]
    net = train_classifier(x, y, epochs=15)
    with torch.no_grad():
        logits = net.representations(x, ["logits"])["logits"]
    inv = train_mse_inversion(logits, x, epochs=60)
    blank = train_mse_inversion(torch.zeros(1000, 3), x, epochs=60)
    with torch.no_grad():
        err = float(((inv(logits) - x) ** 2).mean())
        err_blank = float(((blank(torch.zeros(1000, 3)) - x) ** 2).mean())
    variance = float(x.var(0).mean())
    assert err_blank == pytest.approx(variance, rel=0.05)
    assert err < 0.6 * variance
    with pytest.raises(ValueError, match="h must be"):
        inv(torch.zeros(2, 4))
