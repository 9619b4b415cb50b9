"""Problem 2 (contrastive.py): hidden tests, run at submission (results shown after the due date).

Random batches of other sizes, dimensions, margins and dtypes against the formula, autograd's
gradients against finite differences, and a second MNIST training run with another seed.
Points: 5 (with the 20 of tests/test_contrastive.py, 25 in all).
"""
import math

import pytest
import torch
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from hw3.contrastive_training import mnist_convergence
from hw3.testing import check_metric, training_seed

# As in tests/test_contrastive.py (keep them equal): the tolerance of value checks, and the budget
# and thresholds of the MNIST convergence test 2.2.1, calibrated there.
ATOL = 1e-4
MNIST_BUDGET = dict(iterations=400, batch_size=64, lr=3e-3)
MIN_KNN_ACCURACY = 0.60
MAX_DISTANCE_RATIO = 0.50


def reference_loss(x1, x2, label, margin):
    """The formula, term by term, in float64 (an independent, deliberately plain loop)."""
    total = 0.0
    for a, b, y in zip(x1.double().tolist(), x2.double().tolist(), label.double().reshape(-1).tolist()):
        d = math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b)))
        total += (1 - y) * 0.5 * d ** 2 + y * 0.5 * max(0.0, margin - d) ** 2
    return total / len(x1)


@weight(0.5)
@number("2.1.9")
@visibility("after_due_date")
@pytest.mark.parametrize("n, d, margin, dtype, label_shape", [
    (1, 2, 2.0, torch.float64, "(N,)"),
    (7, 5, 1.0, torch.float32, "(N,1)"),
    (64, 16, 3.5, torch.float64, "(N,1)"),
    (33, 128, 10.0, torch.float32, "(N,)"),
], ids=["one-pair", "n7-d5-m1", "n64-d16-m3.5", "n33-d128-m10"])
def test_random_batches(contrastive, n, d, margin, dtype, label_shape):
    """Random embeddings (some pairs inside the margin, some beyond) and random 0/1 labels of
    either shape and integer or float type, against the formula computed term by term."""
    generator = torch.Generator().manual_seed(1000 + n)
    x1 = torch.randn(n, d, generator=generator, dtype=torch.float64)
    # Scale each difference so its length spans 0 .. 2 x margin: both sides of the margin occur.
    direction = torch.randn(n, d, generator=generator, dtype=torch.float64)
    length = torch.rand(n, 1, generator=generator, dtype=torch.float64) * 2 * margin
    x2 = x1 + direction / direction.norm(dim=1, keepdim=True) * length
    label = torch.randint(0, 2, (n,), generator=generator)
    label[0] = n % 2
    label = label if label_shape == "(N,)" else label.view(-1, 1)
    label = label if n % 2 else label.to(dtype)
    expected = reference_loss(x1, x2, label, margin)
    loss = contrastive.ContrastiveLoss(margin=margin)(x1.to(dtype), x2.to(dtype), label)
    assert loss.numel() == 1, f"expected a scalar loss, got shape {tuple(loss.shape)}"
    tolerance = ATOL + (1e-5 if dtype == torch.float64 else 1e-4) * abs(expected)
    assert abs(loss.item() - expected) <= tolerance, (
        f"{n} random pairs of dimension {d}, margin {margin}, {dtype}, label {tuple(label.shape)} {label.dtype}: "
        f"expected loss {expected:.6g}, got {loss.item():.6g}")


@weight(1)
@number("2.1.10")
@visibility("after_due_date")
def test_gradcheck(contrastive):
    """Autograd's gradients agree with finite differences (float64, away from D = 0 and D = margin,
    where the loss is not smooth), for both embeddings. Autograd runs in the worker (probe
    hw3.remote.probes.gradients); the central differences (eps 1e-6) are taken here from the loss
    values the worker computes, compared as torch.autograd.gradcheck does (atol 1e-5, rtol 1e-3)."""
    generator = torch.Generator().manual_seed(7)
    x1 = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    direction = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    lengths = torch.tensor([0.3, 1.1, 2.9, 0.7, 1.6, 2.4], dtype=torch.float64).view(-1, 1)
    x2 = x1 + direction / direction.norm(dim=1, keepdim=True) * lengths
    label = torch.tensor([0, 1, 1, 1, 0, 1], dtype=torch.float64)
    criterion = contrastive.ContrastiveLoss(margin=2.0)
    result = contrastive.provided("hw3.remote.probes.gradients", "__call__", [x1, x2, label], target=criterion,
                                  wrt=[0, 1])
    if not result["requires_grad"] or any(g is None for g in result["grads"][:2]):
        pytest.fail("gradients of ContrastiveLoss disagree with finite differences: the loss is not differentiable "
                    "with respect to both embeddings (no gradient reached them)")
    eps, atol, rtol = 1e-6, 1e-5, 1e-3
    for which, analytical in enumerate(result["grads"][:2]):
        numerical = torch.zeros_like(analytical, dtype=torch.float64).reshape(-1)
        for index in range(numerical.numel()):
            values = []
            for sign in (1, -1):
                inputs = [x1.clone(), x2.clone()]
                inputs[which].view(-1)[index] += sign * eps
                loss = criterion(*inputs, label)
                assert isinstance(loss, torch.Tensor) and loss.numel() == 1, (
                    f"expected a scalar loss tensor, got {type(loss).__name__} {tuple(getattr(loss, 'shape', ()))}")
                values.append(loss.double().item())
            numerical[index] = (values[0] - values[1]) / (2 * eps)
        numerical = numerical.reshape(analytical.shape)
        if not torch.allclose(analytical.double(), numerical, rtol=rtol, atol=atol):
            pytest.fail(f"gradients of ContrastiveLoss disagree with finite differences: Jacobian mismatch with "
                        f"respect to output{which + 1},\nnumerical:\n{numerical}\nanalytical:\n{analytical}"[:900])


@weight(2)
@number("2.2.2")
@visibility("after_due_date")
@pytest.mark.training
@pytest.mark.timeout(300)
def test_mnist_convergence_other_seed(contrastive):
    """Test 2.2.1 again with another seed (its budget and thresholds).
    The grader scores the prescribed network holding the student's weights."""
    m = mnist_convergence(contrastive, training_seed(1), **MNIST_BUDGET)
    assert m["finite"], "training produced non-finite losses or embeddings (NaN/inf)"
    ratio = m["similar"] / m["dissimilar"] if m["dissimilar"] > 0 else float("inf")
    check_metric("similar/dissimilar distance ratio", ratio, MAX_DISTANCE_RATIO,
                 f"mean distance ratio similar/dissimilar of test pairs {ratio:.3f} "
                 f"({m['similar']:.3f} / {m['dissimilar']:.3f}), expected at most {MAX_DISTANCE_RATIO}",
                 higher_is_better=False)
    check_metric("kNN accuracy", m["knn"], MIN_KNN_ACCURACY,
                 f"5-nearest-neighbour accuracy of the 2-D test embeddings {m['knn']:.1%}, expected at least "
                 f"{MIN_KNN_ACCURACY:.0%}")
