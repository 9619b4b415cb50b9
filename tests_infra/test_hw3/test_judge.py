"""The judge classifier (hw3/judge.py) that scores generated digits: its committed weights, their
checksum, its accuracy and its input checks. Not graded; the graded CVAE and GAN tests rely on it.
"""
import shutil

import pytest
import torch

from hw3 import judge


def test_committed_weights_match_the_recorded_checksum():
    assert judge.WEIGHTS.is_file(), f"{judge.WEIGHTS} is missing"
    assert judge.sha256(judge.WEIGHTS) == judge.JUDGE_SHA256, (
        "hw3/judge.pt does not match JUDGE_SHA256 in hw3/judge.py; retrain with `python -m hw3 judge train`")
    judge.verify_weights()


@pytest.mark.timeout(120)
def test_judge_reaches_99_percent_on_the_mnist_test_set():
    from hw3.loaders import load_mnist

    images, labels = load_mnist(train=False)
    predicted, confidence = judge.classify(images)
    acc = (predicted == labels).float().mean().item()
    assert acc >= 0.99, f"judge test accuracy {acc:.4f} < 0.99"
    assert confidence.min() >= 0.1 and confidence.max() <= 1.0


def test_corrupted_weights_raise_a_clear_error(tmp_path):
    bad = tmp_path / "judge.pt"
    shutil.copy(judge.WEIGHTS, bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(judge.JudgeError) as error:
        judge.load_judge("cpu", path=bad)
    message = str(error.value)
    assert str(bad) in message and judge.JUDGE_SHA256 in message and "python -m hw3 judge train" in message


def test_missing_weights_raise_a_clear_error(tmp_path):
    with pytest.raises(judge.JudgeError, match="missing.*python -m hw3 judge train"):
        judge.load_judge("cpu", path=tmp_path / "nope.pt")


def test_load_judge_is_cached_in_eval_mode_without_gradients():
    model = judge.load_judge("cpu")
    assert model is judge.load_judge(torch.device("cpu"))
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_classify_accepts_every_documented_shape():
    from hw3.loaders import load_mnist

    images, labels = load_mnist(train=False)
    images, labels = images[:50], labels[:50]
    expected, _ = judge.classify(images)
    for shaped in (images.view(50, 784), images.view(50, 28, 28), images.double()):
        got, confidence = judge.classify(shaped)
        assert got.dtype == torch.int64 and got.shape == (50,) and confidence.shape == (50,)
        assert torch.equal(got, expected)
    assert (expected == labels).float().mean() >= 0.9


def test_classify_clamps_rounding_noise_and_rejects_misuse():
    x = torch.rand(4, 784)
    judge.classify(x * (1 + 5e-4) - 2e-4)  # within tolerance: clamped
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        judge.classify(x * 2 - 1)  # tanh range
    with pytest.raises(ValueError, match="values in"):
        judge.classify(x * 255)
    with pytest.raises(ValueError, match="dtype"):
        judge.classify((x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        judge.classify(torch.full((2, 784), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        judge.classify(torch.rand(4, 28 * 27))
    labels, confidence = judge.classify(torch.rand(0, 784))
    assert labels.shape == (0,) and confidence.shape == (0,)


def test_classify_does_not_track_gradients():
    x = torch.rand(2, 784, requires_grad=True)
    labels, confidence = judge.classify(x)
    assert not confidence.requires_grad
