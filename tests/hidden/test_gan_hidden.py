"""Problem 4 (gan.py, DCGAN): hidden graded tests (3.5 points), run at submission, shown later.

Other shapes and seeds, the exact layer-by-layer architecture, soft targets and gradients.
"""
import math

import pytest
import torch
import torch.nn as nn
from gradescope_utils.autograder_utils.decorators import number, visibility, weight


def reference_discriminator():
    """The discriminator of the handout, layer by layer."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(1024, 1024), nn.LeakyReLU(0.01), nn.Linear(1024, 1),
    )


def reference_generator(noise_dim):
    """The generator of the handout, layer by layer."""
    return nn.Sequential(
        nn.Linear(noise_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 128),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh(), nn.Flatten(),
    )


def copy_parameters(student, reference, what):
    """Give ``reference`` the student's parameters (``student``: a handle on the student's model in
    the worker), in the order the handout lists the layers."""
    shapes = [tuple(shape) for _, shape in student.parameter_shapes()]
    ours = list(reference.parameters())
    expected = [tuple(p.shape) for p in ours]
    assert shapes == expected, (f"the {what}'s parameter tensors, in order, should have shapes {expected} "
                                f"(the layers of the handout, in that order); got {shapes}")
    with torch.no_grad():
        for mine, yours in zip(ours, student.parameters()):
            mine.copy_(yours)


def send_parameters(reference, student):
    """Give the student's model (a handle) the parameters of ``reference``, in order (the shapes
    are copy_parameters' check)."""
    names = [name for name, _ in student.parameter_shapes()]
    student.load_state_dict({name: p.detach() for name, p in zip(names, reference.parameters())}, strict=False)


def batch_norm_scale(num_features):
    return torch.empty(num_features, dtype=torch.float64).uniform_(
        0.5, 1.5, generator=torch.Generator().manual_seed(num_features))


def batch_norm_shift(num_features):
    return torch.empty(num_features, dtype=torch.float64).uniform_(
        -0.5, 0.5, generator=torch.Generator().manual_seed(num_features + 1))


def gradient(loss, inputs, position, what, value):
    """The gradient of ``loss(*inputs)`` (a function of the student's, run in the worker; ``value``
    what it returned) with respect to ``inputs[position]``."""
    result = loss.backward(inputs, torch.ones_like(value))
    grad = result["input_grads"][position]
    assert grad is not None, f"{what} is not differentiable with respect to its argument {position + 1}"
    return grad


def softplus(s):
    return math.log1p(math.exp(-abs(s))) + max(s, 0.0)


@weight(0.5)
@number("4.1.4")
@visibility("after_due_date")
def test_sample_noise_other_shapes_and_seeds(gan):
    """Other shapes; fine-grained uniform values; seeds reproduce across shapes."""
    for shape in [(1, 1), (7, 3), (2, 200)]:
        noise = gan.sample_noise(*shape)
        assert noise.shape == shape, f"sample_noise{shape} should have shape {shape}, got {tuple(noise.shape)}"
        assert noise.min() >= -1 and noise.max() < 1, f"sample_noise{shape} left [-1, 1)"
    torch.manual_seed(7)
    noise = gan.sample_noise(200, 50).flatten()
    assert noise.unique().numel() > 9900, "10,000 uniform draws should (almost) all differ: the noise is not continuous"
    assert abs(noise.mean().item()) < 0.03, f"the noise should have mean 0, got {noise.mean():.4f}"
    assert abs(noise.var().item() - 1 / 3) < 0.02, f"U(-1, 1) has variance 1/3, the noise has {noise.var():.4f}"
    a = gan.sample_noise(10, 4, seed=0)
    b = gan.sample_noise(10, 4, seed=0)
    assert torch.equal(a, b), "seed=0 must be honoured too (it is not None)"


@weight(1)
@number("4.2.3")
@visibility("after_due_date")
def test_discriminator_architecture(gan):
    """Layer by layer: with the student's weights, the handout's discriminator computes the same logits."""
    D = gan.build_discriminator()
    D = D.double()  # (in two steps: a handle must outlive the call of its method)
    reference = reference_discriminator().double()
    copy_parameters(D, reference, "discriminator")
    x = torch.rand(6, 784, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        for p in reference.parameters():  # larger weights make a wrong LeakyReLU slope visible
            p.mul_(3)
        send_parameters(reference, D)
        got, want = D(x), reference(x)
    assert got.shape == want.shape == (6, 1)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-9), (
        f"the discriminator computes something other than the handout's architecture (Unflatten, Conv 5x5 "
        f"32, LeakyReLU 0.01, MaxPool 2, Conv 5x5 64, LeakyReLU 0.01, MaxPool 2, Flatten, Linear 1024, "
        f"LeakyReLU 0.01, Linear 1): max difference {(got - want).abs().max():.3g}")


@weight(1)
@number("4.3.3")
@visibility("after_due_date")
def test_generator_architecture(gan):
    """Layer by layer: with the student's weights, the handout's generator computes the same images,
    in training mode (batch statistics) and in eval mode (running statistics)."""
    for noise_dim in (96, 10):
        G = gan.build_generator(noise_dim)
        reference = reference_generator(noise_dim).double()
        copy_parameters(G, reference, "generator")  # float32 values, exact in float64
        G = G.double()
        with torch.no_grad():  # non-trivial batch-norm scales and shifts
            for m in reference.modules():
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    m.weight.copy_(batch_norm_scale(m.num_features))
                    m.bias.copy_(batch_norm_shift(m.num_features))
            norms = [m for m in G.structure() if m["class"] in ("BatchNorm1d", "BatchNorm2d")
                     and "weight" in m["parameters"] and "bias" in m["parameters"]]
            G.load_state_dict({f"{m['name']}.{leaf}": make(m["parameters"]["weight"][0])
                               for m in norms for leaf, make in (("weight", batch_norm_scale),
                                                                 ("bias", batch_norm_shift))}, strict=False)
        z = torch.rand(8, noise_dim, dtype=torch.float64) * 2 - 1
        got, want = G(z), reference(z)
        assert torch.allclose(got, want, rtol=1e-8, atol=1e-8), (
            f"in training mode, build_generator({noise_dim}) computes something other than the handout's "
            f"architecture (Linear, ReLU, BatchNorm1d, Linear, ReLU, BatchNorm1d, Unflatten, ConvTranspose2d, "
            f"ReLU, BatchNorm2d, ConvTranspose2d, Tanh, Flatten): max difference {(got - want).abs().max():.3g}")
        G.eval()
        reference.eval()
        got, want = G(z), reference(z)
        assert torch.allclose(got, want, rtol=1e-8, atol=1e-8), (
            f"in eval mode, build_generator({noise_dim}) differs from the handout's architecture "
            f"(max difference {(got - want).abs().max():.3g}): check the batch-norm layers")


@weight(0.5)
@number("4.5.4")
@visibility("after_due_date")
def test_bce_loss_soft_targets_and_gradient(gan):
    """Targets anywhere in [0, 1]; shapes (N,) and (N, 1); gradient (sigma(s) - z) / N."""
    generator = torch.Generator().manual_seed(23)
    for shape in [(40,), (40, 1), (5, 8)]:
        logits = torch.randn(*shape, generator=generator, dtype=torch.float64) * 4
        targets = torch.rand(*shape, generator=generator, dtype=torch.float64)
        loss = gan.bce_loss(logits, targets)
        p = torch.sigmoid(logits)
        want = (-(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))).mean()
        assert loss.shape == (), f"bce_loss should return a scalar for inputs of shape {shape}"
        assert torch.allclose(loss, want, rtol=1e-10, atol=0), (
            f"bce_loss with soft targets (shape {shape}) = {loss.item():.10f}, expected {want.item():.10f}")
        got = gradient(gan.bce_loss, [logits, targets], 0, "bce_loss", loss)
        grad = (p - targets) / logits.numel()
        assert torch.allclose(got, grad, rtol=1e-8, atol=1e-12), (
            f"the gradient of bce_loss (shape {shape}) should be (sigmoid(s) - z) / N")


@weight(0.5)
@number("4.7.3")
@visibility("after_due_date")
def test_gan_losses_random_and_extreme_logits(gan):
    """Both losses on random batches (values and gradients) and on saturated logits (+-1e4)."""
    generator = torch.Generator().manual_seed(24)
    real = torch.randn(32, 1, generator=generator, dtype=torch.float64) * 2
    fake = torch.randn(32, 1, generator=generator, dtype=torch.float64) * 2
    d_loss = gan.discriminator_loss(real, fake)
    want = torch.nn.functional.softplus(-real).mean() + torch.nn.functional.softplus(fake).mean()
    assert torch.allclose(d_loss, want, rtol=1e-10), f"discriminator_loss = {d_loss.item():.8f}, expected {want.item():.8f}"
    real_grad, fake_grad = (gradient(gan.discriminator_loss, [real, fake], i, "discriminator_loss", d_loss)
                            for i in (0, 1))
    assert torch.allclose(real_grad, (torch.sigmoid(real) - 1) / 32, rtol=1e-8), (
        "the gradient of discriminator_loss with respect to logits_real should be (sigmoid(s) - 1) / N")
    assert torch.allclose(fake_grad, torch.sigmoid(fake) / 32, rtol=1e-8), (
        "the gradient of discriminator_loss with respect to logits_fake should be sigmoid(s) / N")
    g_loss = gan.generator_loss(fake)
    want = torch.nn.functional.softplus(-fake).mean()
    assert torch.allclose(g_loss, want, rtol=1e-10), f"generator_loss = {g_loss.item():.8f}, expected {want.item():.8f}"
    fake_grad = gradient(gan.generator_loss, [fake], 0, "generator_loss", g_loss)
    assert torch.allclose(fake_grad, (torch.sigmoid(fake) - 1) / 32, rtol=1e-8), (
        "the generator loss should push the fake logits up (gradient (sigmoid(s) - 1) / N)")
    extreme = torch.tensor([[1e4], [-1e4]])
    d = gan.discriminator_loss(extreme, extreme).item()
    g = gan.generator_loss(extreme).item()
    assert d == pytest.approx(1e4, rel=1e-5), f"discriminator_loss on logits +-1e4 = {d}, expected 1e4"
    assert g == pytest.approx(5e3, rel=1e-5), f"generator_loss on logits +-1e4 = {g}, expected 5e3"
