"""Problem 3 (cvae.py, conditional VAE): hidden graded tests (4.5 points; results after the due date).

The same parts as tests/test_cvae.py on other sizes, dtypes and cases.
"""
import math

import torch
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from hw3.testing import check_shape


@weight(0.5)
@number("3.3.2")
@visibility("after_due_date")
def test_one_hot_other_sizes(cvae):
    """one_hot on a longer batch, with 3 and 12 classes; every class appears; one label alone."""
    labels = torch.arange(12).flip(0).repeat(3)
    out = cvae.one_hot(labels, num_classes=12)
    check_shape(out, (36, 12), "one_hot(36 labels, num_classes=12)")
    assert torch.equal(out.float(), torch.eye(12)[labels]), "one_hot(labels, 12) does not match the identity rows"
    three = cvae.one_hot(torch.tensor([2, 2, 0, 1]), 3)
    assert torch.equal(three.float(), torch.eye(3)[[2, 2, 0, 1]]), f"one_hot([2, 2, 0, 1], 3) is wrong: {three.tolist()}"
    single = cvae.one_hot(torch.tensor([9]))
    check_shape(single, (1, 10), "one_hot of a single label")
    assert single[0, 9] == 1 and single.sum() == 1, f"one_hot([9]) is wrong: {single.tolist()}"


@weight(1)
@number("3.6.3")
@visibility("after_due_date")
def test_cvae_other_dimensions(cvae):
    """CVAE(input_dim=36, num_classes=4, hidden_dim=16, latent_dim=3): encode, decode, forward and
    the loss work with the constructor's sizes, on (N, 36) and (N, 1, 6, 6) inputs, and train."""
    torch.manual_seed(5)
    model = cvae.CVAE(input_dim=36, num_classes=4, hidden_dim=16, latent_dim=3)
    x, y = torch.rand(7, 1, 6, 6), torch.tensor([0, 1, 2, 3, 3, 2, 1])
    mu, logvar = model.encode(x, y)
    check_shape(mu, (7, 3), "mu of CVAE(latent_dim=3)")
    check_shape(logvar, (7, 3), "logvar of CVAE(latent_dim=3)")
    out = model.decode(torch.randn(7, 3), y)
    check_shape(out, (7, 36), "decode of CVAE(input_dim=36)")
    recon, mu, logvar = model(x.reshape(7, 36), y)
    check_shape(recon, (7, 36), "forward's recon of CVAE(input_dim=36)")
    assert recon.min() >= 0 and recon.max() <= 1, "recon should lie in (0, 1)"
    hidden = [name for name, shape in model.parameter_shapes() if len(shape) == 2 and 16 in shape]
    assert hidden, "no weight matrix of CVAE(hidden_dim=16) has a dimension of 16: use hidden_dim"
    losses = []
    state = model.state_dict()
    loss_shape = None
    for _ in range(20):  # plain gradient descent (torch.optim's first use imports slowly), steps taken here
        rng = torch.get_rng_state()
        recon, mu, logvar = model(x, y)
        if loss_shape is None:
            loss_shape = cvae.loss_function(recon, x, mu, logvar).shape
        step = cvae.loss_function.backward([recon, x, mu, logvar], torch.ones(loss_shape))
        losses.append(step["output"].reshape(()).item())
        d_recon, _, d_mu, d_logvar = step["input_grads"]
        torch.set_rng_state(rng)  # the same latent sample as the forward above
        grads = model.backward([x, y], [d_recon, d_mu, d_logvar])["parameter_grads"]
        for name, grad in grads.items():
            if grad is not None:
                state[name] = state[name] - 0.1 * grad
        model.load_state_dict(state)
    # Reference over 100 seeds: the mean of the last 3 losses is 0.59-1.72 below that of the first 3.
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first, (f"20 gradient steps on 7 images should lower the loss: the first three steps' "
                          f"mean was {first:.2f}, the last three's {last:.2f}")


@weight(1)
@number("3.7.3")
@visibility("after_due_date")
def test_kl_divergence_random_cases(cvae):
    """Random mu, logvar of shape (64, 9), float64: the closed form; zero exactly at the prior; non-negative;
    gradients d KL / d mu = mu and d KL / d logvar = (exp(logvar) - 1) / 2."""
    generator = torch.Generator().manual_seed(22)
    mu = (3 * torch.randn(64, 9, generator=generator, dtype=torch.float64)).requires_grad_()
    logvar = (2 * torch.randn(64, 9, generator=generator, dtype=torch.float64)).requires_grad_()
    kl = cvae.kl_divergence(mu, logvar)
    check_shape(kl, (64,), "kl_divergence for mu, logvar of shape (64, 9)")
    expected = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(1)
    assert torch.allclose(kl.double(), expected.detach(), rtol=1e-9, atol=1e-9), (
        f"kl_divergence is off: max error {(kl.double() - expected).abs().max().item():.3g}")
    assert (kl >= 0).all(), "a KL divergence is never negative"
    # the gradients of kl.sum(), computed where the code runs
    mu_grad, logvar_grad = cvae.kl_divergence.backward([mu, logvar], torch.ones_like(kl))["input_grads"]
    assert mu_grad is not None and torch.allclose(mu_grad, mu.detach()), "d KL / d mu should be mu"
    assert logvar_grad is not None and torch.allclose(logvar_grad, 0.5 * (logvar.detach().exp() - 1)), (
        "d KL / d logvar should be (exp(logvar) - 1) / 2")
    zero = cvae.kl_divergence(torch.zeros(2, 5), torch.zeros(2, 5))
    assert torch.allclose(zero, torch.zeros(2)), f"KL(N(0, I) || N(0, I)) should be 0, got {zero.tolist()}"


@weight(1)
@number("3.8.3")
@visibility("after_due_date")
def test_loss_function_unflattened_images_and_batches(cvae):
    """x of shape (N, 1, 28, 28) against recon (N, 784); a batch and the same batch twice have the
    same loss (a mean over images); the loss equals the formula in float32 too."""
    generator = torch.Generator().manual_seed(23)
    recon = 0.01 + 0.98 * torch.rand(3, 784, generator=generator)
    x = torch.rand(3, 1, 28, 28, generator=generator)
    mu, logvar = torch.randn(3, 20, generator=generator), torch.randn(3, 20, generator=generator)
    loss = cvae.loss_function(recon, x, mu, logvar)
    assert isinstance(loss, torch.Tensor) and loss.numel() == 1, "loss_function should return a scalar tensor"
    r, t = recon.double(), x.double().reshape(3, 784)
    bce = -(t * r.log() + (1 - t) * (1 - r).log()).sum(1)
    kl = 0.5 * (logvar.double().exp() + mu.double() ** 2 - 1 - logvar.double()).sum(1)
    expected = (bce + kl).mean().item()
    assert math.isclose(loss.item(), expected, rel_tol=1e-5), f"expected {expected:.4f}, got {loss.item():.4f}"
    twice = cvae.loss_function(recon.repeat(2, 1), x.repeat(2, 1, 1, 1), mu.repeat(2, 1), logvar.repeat(2, 1))
    assert math.isclose(twice.item(), loss.item(), rel_tol=1e-5), (
        f"the loss of a batch repeated twice ({twice.item():.4f}) should equal the batch's loss "
        f"({loss.item():.4f}): average over the images, don't sum")


@weight(1)
@number("3.5.3")
@visibility("after_due_date")
def test_reparameterize_dtype_shape_and_independent_noise(cvae):
    """reparameterize keeps float64 and the shape (N, L) = (50000, 3); the noise of different samples
    and dimensions is uncorrelated (|correlation| < 0.03), and for logvar -> -inf z -> mu."""
    model = cvae.CVAE()
    mu = torch.zeros(50000, 3, dtype=torch.float64)
    z = model.reparameterize(mu, torch.zeros_like(mu))
    check_shape(z, (50000, 3), "reparameterize for mu of shape (50000, 3)")
    assert z.dtype == torch.float64, f"z should keep mu's dtype float64, got {z.dtype} (use torch.randn_like)"
    corr = torch.corrcoef(z.T)
    off_diagonal = (corr - torch.eye(3, dtype=torch.float64)).abs().max().item()
    assert off_diagonal < 0.03, f"the latent dimensions' noise should be independent, correlation {off_diagonal:.2f}"
    lag = torch.corrcoef(torch.stack([z[:-1, 0], z[1:, 0]]))[0, 1].abs().item()
    assert lag < 0.03, f"consecutive samples' noise should be independent, correlation {lag:.2f}"
    assert abs(z.std().item() - 1) < 0.02, f"with logvar = 0 the spread should be 1, got {z.std().item():.3f}"
    mu2 = torch.randn(4, 3, dtype=torch.float64)
    tight = model.reparameterize(mu2, torch.full_like(mu2, -40.0))
    assert torch.allclose(tight, mu2, atol=1e-6), "with logvar = -40 (sigma = 2e-9), z should equal mu"
