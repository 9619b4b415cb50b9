"""Problem 3 (cvae.py, conditional VAE): the visible graded tests.

    pytest tests/test_cvae.py                     # your starter/cvae.py
    pytest tests/test_cvae.py -m "not training"   # everything but the two training tests (seconds)

Points: 20.5 here; 4.5 more in hidden tests, which run when you submit (their results are shown
after the due date); 25 in all.

One module for the problem's visible tests (hence its length): the grader runs, isolates and
scores each problem by its test files.
"""
import contextlib
import math

import pytest
import torch
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from hw3.cvae_experiment import measure_trained
from hw3.devicecheck import OFF_CPU, judged, judged_tensor
from hw3.testing import check_metric, check_shape, training_seed

# The training tests' budget (iterations, not wall time) and thresholds (tests 3.9.1 and 3.9.2).
#
# Budget: CVAE(latent_dim=2) trained by hw3.cvae_experiment.train_cvae for 1,500 Adam steps
# (lr 5e-3) on batches of 128 MNIST training digits (3.2 epochs), then evaluated on the 10,000
# test digits (negative ELBO, one latent sample each) and on 100 samples z ~ N(0, I) per label
# (the judge's accuracy). The student's worker trains and returns the trained weights; the grader
# loads them into its own copy of the architecture of handout section 3.4 (without it, locally,
# your trained model is measured in the worker) and measures that with its own test set, noise
# and labels. A 2-d code makes the decoder take the digit's identity from the label within a few
# hundred steps; with the default 20 dimensions that takes several epochs.
# Calibration: the staff's RESULTS-cvae.md, 3.9.1 and 3.9.2 (reference, 8 seeds: -ELBO 135.0-135.5).
BUDGET = dict(iterations=1500, batch_size=128, lr=5e-3, latent_dim=2, judge_per_label=100)
NEGATIVE_ELBO_THRESHOLD = 140.0
JUDGE_MEAN_THRESHOLD = 0.90
JUDGE_LABEL_THRESHOLD = 0.50
TIMEOUT = 600


def as_tuple(output, name, count):
    assert isinstance(output, (tuple, list)) and len(output) == count, (
        f"{name} should return a tuple of {count} tensors, got {type(output).__name__}"
        + (f" of length {len(output)}" if isinstance(output, (tuple, list)) else ""))
    return output


def closest_pair_distance(rows):
    """The smallest L2 distance between two different rows, in float64."""
    distance = torch.cdist(rows.double(), rows.double())
    distance.fill_diagonal_(float("inf"))
    return distance.min().item()


def reference_kl(mu, logvar):
    """-1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)), in float64, per row."""
    mu, logvar = mu.double(), logvar.double()
    return -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)


def reference_bce(recon, x):
    """Summed over pixels, per image: -(x log r + (1 - x) log(1 - r)), in float64."""
    r, t = recon.double(), x.double().reshape(recon.shape)
    return -(t * r.log() + (1 - t) * (1 - r).log()).sum(1)


# ---------------------------------------------------------------------------------------------
# 3.3 one_hot
# ---------------------------------------------------------------------------------------------

@weight(0.5)
@number("3.3.1")
@visibility("visible")
def test_one_hot(cvae):
    """one_hot(labels) puts a single 1 in column labels[i] of row i, as floats."""
    labels = torch.tensor([3, 0, 9, 3, 7])
    out = cvae.one_hot(labels)
    check_shape(out, (5, 10), "one_hot(labels of shape (5,))")
    assert out.is_floating_point(), f"one_hot should return floats (the networks take them as input), got {out.dtype}"
    expected = torch.zeros(5, 10)
    expected[range(5), labels] = 1
    assert torch.equal(out.float(), expected), (
        f"one_hot({labels.tolist()}) should have its ones in columns {labels.tolist()}, got ones in columns "
        f"{out.argmax(1).tolist()} (row sums {out.sum(1).tolist()})")
    small = cvae.one_hot(torch.tensor([0, 4, 2]), num_classes=5)
    check_shape(small, (3, 5), "one_hot(labels of shape (3,), num_classes=5)")
    assert torch.equal(small.float(), torch.eye(5)[[0, 4, 2]]), f"one_hot([0, 4, 2], 5) is wrong: got {small.tolist()}"


@weight(0.5)
@number("3.3.3")
@visibility("visible")
def test_one_hot_stays_on_the_labels_device(cvae):
    """one_hot returns its vectors on the labels' device: labels that report the meta device (a
    stand-in for a GPU that holds real values: hw3/devicecheck.py) give one-hot vectors on it.
    torch.zeros(N, C) (or torch.eye(C)) without device=labels.device is on the CPU and fails here,
    as it would on a GPU. Only the device is checked here; the values are test 3.3.1's."""
    what = "one_hot(labels)"
    hint = ("create the vectors on the labels' device: torch.zeros(N, C, device=labels.device) "
            "(or torch.eye(C, device=labels.device), F.one_hot(labels, C).float())")
    judged(cvae.provided("hw3.remote.probes.on_device", "one_hot", [torch.tensor([3, 0, 9, 3, 7])]), what, hint)
    judged(cvae.provided("hw3.remote.probes.on_device", "one_hot", [torch.tensor([0, 4, 2])], {"num_classes": 5}),
           what, hint, names=["one_hot(labels, 5)"])


# ---------------------------------------------------------------------------------------------
# 3.4 and 3.6 shapes of encode, decode and forward
# ---------------------------------------------------------------------------------------------

@weight(1.5)
@number("3.4.1")
@visibility("visible")
def test_encode_shapes_flattened_or_not(cvae):
    """encode(x, y) gives mu and logvar of shape (N, 20), whether x is (N, 784), (N, 28, 28) or (N, 1, 28, 28)."""
    model = cvae.CVAE()
    x, y = torch.rand(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 9])
    results = {}
    for shape in [(6, 784), (6, 28, 28), (6, 1, 28, 28)]:
        mu, logvar = as_tuple(model.encode(x.reshape(shape), y), "encode", 2)
        check_shape(mu, (6, 20), f"mu for x of shape {shape}")
        check_shape(logvar, (6, 20), f"logvar for x of shape {shape}")
        results[shape] = (mu, logvar)
    flat_mu, flat_logvar = results[(6, 784)]
    for shape, (mu, logvar) in results.items():
        assert torch.allclose(mu, flat_mu, atol=1e-6) and torch.allclose(logvar, flat_logvar, atol=1e-6), (
            f"encode should flatten x: x of shape {shape} gave a different mu/logvar than the same images "
            f"flattened to (6, 784)")
    assert not torch.allclose(flat_mu, flat_logvar), "mu and logvar should come from two different layers"


@weight(1.5)
@number("3.6.1")
@visibility("visible")
def test_decode_and_forward_shapes_and_range(cvae):
    """decode(z, y) is (N, 784) in [0, 1]; forward(x, y) returns (recon, mu, logvar) of shapes (N, 784),
    (N, 20), (N, 20), with forward's mu that of encode and recon decoded from a sampled z."""
    model = cvae.CVAE()
    y = torch.tensor([5, 1, 7, 0])
    out = model.decode(3 * torch.randn(4, 20), y)
    check_shape(out, (4, 784), "decode(z of shape (4, 20), y)")
    assert out.min() >= 0 and out.max() <= 1, (
        f"decode should return Bernoulli means in (0, 1) (end with a sigmoid), got values in "
        f"[{out.min().item():.3f}, {out.max().item():.3f}]")
    for shape in [(4, 784), (4, 1, 28, 28)]:
        recon, mu, logvar = as_tuple(model(torch.rand(shape), y), "forward", 3)
        check_shape(recon, (4, 784), f"recon for x of shape {shape}")
        check_shape(mu, (4, 20), f"mu for x of shape {shape}")
        check_shape(logvar, (4, 20), f"logvar for x of shape {shape}")
        assert recon.min() >= 0 and recon.max() <= 1, (
            f"forward's recon should lie in (0, 1), got [{recon.min().item():.3f}, {recon.max().item():.3f}]")
    x = torch.rand(4, 784)
    with torch.no_grad():
        mu, _ = model.encode(x, y)
        recon1, mu2, _ = model(x, y)
        recon2, _, _ = model(x, y)
    assert torch.allclose(mu, mu2), "forward's mu should be encode(x, y)'s mu"
    assert not torch.allclose(recon1, recon2), (
        "forward should decode a sampled z = reparameterize(mu, logvar) (in training and evaluation mode), so "
        "two calls on the same input give different reconstructions; got the same twice (are you decoding mu?)")


# ---------------------------------------------------------------------------------------------
# the label conditions the decoder and the encoder
# ---------------------------------------------------------------------------------------------

@weight(1.5)
@number("3.6.2")
@visibility("visible")
def test_decode_depends_on_the_label(cvae):
    """The same latent code decoded with each of the 10 labels gives 10 different images."""
    model = cvae.CVAE()
    z = torch.randn(1, 20).repeat(10, 1)
    with torch.no_grad():
        out = model.decode(z, torch.arange(10))
    closest = closest_pair_distance(out)
    assert closest > 1e-3, (
        f"decode ignores the label: the same z decoded with two different labels gave images only "
        f"{closest:.2e} apart (L2); concatenate one_hot(y) to z before the first decoder layer")


@weight(0.5)
@number("3.4.2")
@visibility("visible")
def test_encode_depends_on_the_label(cvae):
    """The same image encoded with each of the 10 labels gives 10 different means."""
    model = cvae.CVAE()
    x = torch.rand(1, 784).repeat(10, 1)
    with torch.no_grad():
        mu, logvar = model.encode(x, torch.arange(10))
    closest = closest_pair_distance(torch.cat([mu, logvar], 1))
    assert closest > 1e-4, (
        f"encode ignores the label: the same image encoded with two different labels gave (mu, logvar) "
        f"only {closest:.2e} apart; q(z | x, y) takes [x, one_hot(y)] as input")


# ---------------------------------------------------------------------------------------------
# 3.5 reparameterize
# ---------------------------------------------------------------------------------------------

MU = torch.tensor([0.0, 1.0, -2.0, 0.5], dtype=torch.float64)
LOGVAR = torch.tensor([0.0, 2.0, -2.0, -1.0], dtype=torch.float64)   # std 1, e, 1/e, e^-0.5


def normal_ks_distance(samples):
    """Kolmogorov-Smirnov distance between the samples' empirical CDF and the standard normal CDF."""
    s = samples.double().flatten().sort().values
    n = s.numel()
    cdf = 0.5 * (1 + torch.erf(s / math.sqrt(2)))
    hi = torch.arange(1, n + 1, dtype=torch.float64) / n
    lo = torch.arange(0, n, dtype=torch.float64) / n
    return torch.max(torch.maximum(hi - cdf, cdf - lo)).item()


@weight(1.5)
@number("3.5.1")
@visibility("visible")
def test_reparameterize_spread(cvae):
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I): the empirical mean and standard deviation of
    20,000 draws match mu and exp(logvar / 2), eps is standard normal, and two calls differ.

    Tolerances: mean within 5 standard errors, std within 3 % (its standard error is 0.5 %), KS
    distance < 0.01 (a correct sampler exceeds it with probability < 1e-6 for 80,000 draws).
    """
    model = cvae.CVAE()
    n = 20000
    mu, logvar = MU.repeat(n, 1), LOGVAR.repeat(n, 1)
    z = model.reparameterize(mu, logvar)
    check_shape(z, (n, 4), "reparameterize(mu, logvar) for mu, logvar of shape (20000, 4)")
    z = z.detach().double()
    std = torch.exp(0.5 * LOGVAR)
    mean_error = ((z.mean(0) - MU).abs() / (std / math.sqrt(n))).max().item()
    assert mean_error < 5, (f"the samples' mean should be mu = {MU.tolist()}, got {z.mean(0).tolist()} "
                            f"(eps must have mean 0)")
    spread = z.std(0)
    assert torch.allclose(spread, std, rtol=0.03), (
        f"for logvar = {LOGVAR.tolist()} the samples' standard deviation should be exp(logvar / 2) = "
        f"{[round(s, 3) for s in std.tolist()]}, got {[round(s, 3) for s in spread.tolist()]}")
    ks = normal_ks_distance((z - MU) / std)
    assert ks < 0.01, f"eps should be standard normal (torch.randn_like): its KS distance to N(0, 1) is {ks:.3f}"
    again = model.reparameterize(mu[:10], logvar[:10])
    assert not torch.allclose(again.double(), model.reparameterize(mu[:10], logvar[:10]).double()), (
        "two calls of reparameterize returned the same z: draw fresh noise eps on every call")


@weight(1)
@number("3.5.2")
@visibility("visible")
def test_reparameterize_gradients(cvae):
    """Gradients of z flow back to mu (dz/dmu = 1) and to logvar (dz/dlogvar = (z - mu) / 2)."""
    model = cvae.CVAE()
    mu, logvar = MU.repeat(8, 1), LOGVAR.repeat(8, 1)
    # z = reparameterize(mu, logvar) and the gradients of z.sum(), both computed where the code runs
    result = model.reparameterize.backward([mu, logvar], torch.ones(8, 4, dtype=torch.float64))
    z, (mu_grad, logvar_grad) = result["output"], result["input_grads"]
    check_shape(z, (8, 4), "reparameterize(mu, logvar) for mu, logvar of shape (8, 4)")
    assert mu_grad is not None or logvar_grad is not None, (
        "z does not depend differentiably on mu and logvar (is something detached?)")
    assert mu_grad is not None and logvar_grad is not None, "the gradient does not reach mu and logvar"
    assert torch.allclose(mu_grad, torch.ones_like(mu)), f"dz/dmu should be 1, got {mu_grad[0].tolist()}"
    expected = 0.5 * (z.double() - mu)
    assert torch.allclose(logvar_grad, expected, atol=1e-6), (
        f"dz/dlogvar should be exp(logvar / 2) * eps / 2 = (z - mu) / 2, e.g. {expected[0].tolist()}, "
        f"got {logvar_grad[0].tolist()}")


@weight(0.5)
@number("3.5.4")
@visibility("visible")
def test_reparameterize_stays_on_the_inputs_device(cvae):
    """reparameterize draws its noise on mu's device: on mu and logvar that report the meta device
    (a stand-in for a GPU that holds real values: hw3/devicecheck.py), z and the gradients are on
    it. torch.randn(shape) without device= is on the CPU and fails here, as it would on a GPU.
    Only devices are checked here; the distribution is tests 3.5.1-3.5.3's."""
    model = cvae.CVAE()
    what = "reparameterize(mu, logvar)"
    hint = "draw eps on mu's device: torch.randn_like(std) (or torch.randn(shape, dtype=mu.dtype, device=mu.device))"
    for dtype in (torch.float32, torch.float64):
        # run in the worker on mu, logvar on OFF_CPU, then backward from z.sum()
        report = cvae.provided("hw3.remote.probes.on_device", "reparameterize",
                               [MU.repeat(8, 1).to(dtype), LOGVAR.repeat(8, 1).to(dtype)], target=model, backward=True)
        z = (report.get("outputs") or [None])[0]
        if (report.get("error") and not report.get("wrong_device") and type(z) is dict and z.get("tensor")
                and z.get("on_device") and not z.get("requires_grad")):
            raise AssertionError(f"{what} on {OFF_CPU.type}: z is not differentiable")
        judged(report, what, hint)
        for name, grad in zip(("mu", "logvar"), report.get("grads") or [None, None]):
            assert grad is not None, f"{what} on {OFF_CPU.type}: no gradient reached {name}"
            judged_tensor(grad, f"the gradient of {what} with respect to {name}", hint)


# ---------------------------------------------------------------------------------------------
# 3.7 kl_divergence
# ---------------------------------------------------------------------------------------------

@weight(2)
@number("3.7.1")
@visibility("visible")
def test_kl_divergence_hand_cases(cvae):
    """Cases worked by hand from 1/2 sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2)."""
    mu = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.5, -1.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [math.log(4), 0.0, 0.0],
                           [math.log(0.25), 0.0, math.log(2)]], dtype=torch.float64)
    expected = [
        0.0,                                          # the prior itself
        0.5 * (1 + 4),                                # unit variances: 1/2 |mu|^2
        0.5 * (4 - 1 - math.log(4)),                  # sigma^2 = 4 in one dimension
        0.5 * ((0.25 + 0.25 - 1 - math.log(0.25)) + (1 + 1 - 1) + (2 - 1 - math.log(2))),
    ]
    kl = cvae.kl_divergence(mu, logvar)
    check_shape(kl, (4,), "kl_divergence(mu, logvar) for mu, logvar of shape (4, 3) (one value per sample)")
    got = kl.detach().double().tolist()
    assert all(abs(g - e) < 1e-6 for g, e in zip(got, expected)), (
        f"kl_divergence is wrong: expected {[round(e, 4) for e in expected]}, got {[round(g, 4) for g in got]} "
        f"(KL = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)), summed over the latent dimensions)")


@weight(1)
@number("3.7.2")
@visibility("visible")
def test_kl_divergence_matches_monte_carlo(cvae):
    """For random mu and logvar, the closed form agrees with a Monte Carlo estimate of
    E_q[log q(z) - log p(z)] from 400,000 samples (within 5 standard errors + 0.005)."""
    generator = torch.Generator().manual_seed(3)
    mu = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    logvar = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    kl = cvae.kl_divergence(mu, logvar)
    check_shape(kl, (3,), "kl_divergence(mu, logvar) for mu, logvar of shape (3, 4)")
    std = torch.exp(0.5 * logvar)
    eps = torch.randn(400000, 3, 4, generator=generator, dtype=torch.float64)
    z = mu + std * eps
    log_q = (-0.5 * eps ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_p = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    terms = log_q - log_p
    estimate, stderr = terms.mean(0), terms.std(0) / math.sqrt(len(terms))
    error = (kl.detach().double() - estimate).abs()
    assert (error < 5 * stderr + 0.005).all(), (
        f"kl_divergence disagrees with a Monte Carlo estimate of KL(q || N(0, I)): expected about "
        f"{[round(v, 3) for v in estimate.tolist()]}, got {[round(v, 3) for v in kl.tolist()]}")


# ---------------------------------------------------------------------------------------------
# 3.8 loss_function
# ---------------------------------------------------------------------------------------------

def loss_inputs(n, d, latent, seed):
    generator = torch.Generator().manual_seed(seed)
    recon = (0.02 + 0.96 * torch.rand(n, d, generator=generator, dtype=torch.float64)).requires_grad_()
    x = torch.rand(n, d, generator=generator, dtype=torch.float64)   # grey levels, like MNIST
    x[0, : d // 2] = (x[0, : d // 2] > 0.5).double()                  # and some black/white pixels
    mu = torch.randn(n, latent, generator=generator, dtype=torch.float64).requires_grad_()
    logvar = torch.randn(n, latent, generator=generator, dtype=torch.float64).requires_grad_()
    return recon, x, mu, logvar


def scalar(loss):
    assert isinstance(loss, torch.Tensor) and loss.numel() == 1, (
        f"loss_function should return a scalar tensor, got "
        f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}")
    return loss.reshape(()).double().item()


@weight(1.5)
@number("3.8.1")
@visibility("visible")
def test_loss_function_reconstruction_term(cvae):
    """With q(z|x,y) = N(0, I) (KL = 0) the loss is the binary cross-entropy summed over the pixels
    of each image and averaged over the images."""
    recon, x, _, _ = loss_inputs(5, 30, 3, seed=1)
    zeros = torch.zeros(5, 3, dtype=torch.float64)
    loss = scalar(cvae.loss_function(recon, x, zeros, zeros))
    per_image = reference_bce(recon.detach(), x)
    expected = per_image.mean().item()
    hint = ""
    if abs(loss - per_image.sum().item()) < 1e-6:
        hint = " (that is the sum over the batch: average over the N images)"
    elif abs(loss - expected / 30) < 1e-6:
        hint = " (that is the mean over the pixels: sum over the D pixels of each image)"
    assert abs(loss - expected) < 1e-6 * max(1, abs(expected)), (
        f"loss_function with mu = logvar = 0 should be mean_i sum_pixels BCE = {expected:.6f}, got {loss:.6f}{hint}")


@weight(1)
@number("3.8.2")
@visibility("visible")
def test_loss_function_is_the_negative_elbo(cvae):
    """loss = mean_i [ sum_pixels BCE(recon_i, x_i) + KL_i ], and it is differentiable."""
    recon, x, mu, logvar = loss_inputs(4, 50, 6, seed=2)
    loss = cvae.loss_function(recon, x, mu, logvar)
    expected = (reference_bce(recon.detach(), x) + reference_kl(mu.detach(), logvar.detach())).mean().item()
    got = scalar(loss)
    assert abs(got - expected) < 1e-6 * max(1, abs(expected)), (
        f"loss_function should be mean_i [sum_pixels BCE + KL_i] = {expected:.6f}, got {got:.6f}")
    # the gradients of the loss, computed where the code runs
    grads = cvae.loss_function.backward([recon, x, mu, logvar], torch.ones_like(loss))["input_grads"]
    for name, grad in (("recon", grads[0]), ("mu", grads[2]), ("logvar", grads[3])):
        assert grad is not None and grad.abs().sum() > 0, f"the loss should depend on {name}"


# ---------------------------------------------------------------------------------------------
# 3.9 training on MNIST
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def requests_may_take(module, seconds):
    """Let one request to the worker (the training) take up to ``seconds``: the proxy's default
    limit per request is shorter than this test's TIMEOUT."""
    previous = module._timeout
    module._timeout = max(previous, seconds)
    try:
        yield
    finally:
        module._timeout = previous


def numbers(values) -> list:
    """The worker's training losses as floats (only failure messages quote them)."""
    if not isinstance(values, (list, tuple)) or not all(type(v) in (int, float) for v in values):
        return []
    return [float(v) for v in values]


@pytest.fixture(scope="module")
def trained(cvae):
    """The CVAE trained once with BUDGET, and its measurements (shared by 3.9.1 and 3.9.2).

    The worker trains it (hw3.cvae_experiment.train_for_judge: the provided loop and your cvae.py)
    and returns the trained state_dict. The grader loads the weights into the architecture of handout
    section 3.4 (its own code, layer by layer in the table's order, matched by shape) and measures
    it: the negative ELBO on the MNIST test set (which the worker never sees) and the judge's
    reading of digits decoded from this process's own codes and labels. The mu and logvar layers
    have the same shape: your trained model's encode on random images decides which is which.
    Locally (no grader code) your own trained model is measured in the worker on the same inputs.
    """
    return train_and_measure(cvae, training_seed(0), BUDGET, TIMEOUT)


def train_and_measure(cvae, seed, budget, seconds, device=None):
    """The worker trains with ``budget`` (its training request may take ``seconds``); the grader
    measures the trained weights (``measure_trained``). Returns its measurements and the losses."""
    training = {key: value for key, value in budget.items() if key != "judge_per_label"}
    with requests_may_take(cvae, seconds):
        run = cvae.provided("hw3.cvae_experiment.train_for_judge", seed=seed, device=device and str(device),
                            **training)
    assert type(run) is dict and type(run.get("state")) is dict, (
        "the provided training loop should return the trained CVAE's state_dict; the worker sent "
        f"{type(run).__name__}")
    losses = numbers(run.get("losses"))
    result = measure_trained(cvae, run, seed=seed, judge_per_label=budget["judge_per_label"],
                             latent_dim=budget["latent_dim"])
    return dict(result, losses=losses)


def measured(trained, key):
    assert "mismatch" not in trained, (
        f"your trained weights do not fit the CVAE of handout section 3.4 (the tests load them into that "
        f"architecture to measure it): {trained.get('mismatch')}")
    return trained[key]


def loss_summary(losses) -> str:
    if not losses:
        return "The training losses did not come back"
    return (f"Your training loss went from {losses[0]:.1f} to {sum(losses[-10:]) / len(losses[-10:]):.1f} "
            f"(mean of the last 10 batches)")


@pytest.mark.training
@pytest.mark.timeout(TIMEOUT)
@weight(3)
@number("3.9.1")
@visibility("visible")
def test_training_lowers_the_negative_elbo(trained):
    """After 1,500 Adam steps on MNIST (CVAE(latent_dim=2)), the test-set negative ELBO is at most
    140 nats per image (the reference solution: 135.0-135.5 over 8 seeds).
    The grader scores the prescribed network holding the student's weights (locally: your own trained model)."""
    value = measured(trained, "test_negative_elbo")
    check_metric("test negative ELBO (nats)", value, NEGATIVE_ELBO_THRESHOLD,
                 f"after {BUDGET['iterations']} training iterations the test-set negative ELBO is {value:.2f} nats "
                 f"per image; a correct CVAE reaches {NEGATIVE_ELBO_THRESHOLD:.0f} or less (the reference: about "
                 f"135). {loss_summary(trained['losses'])}. "
                 f"Check loss_function (BCE summed over pixels, plus KL, averaged over the batch) and reparameterize.",
                 higher_is_better=False)


@pytest.mark.training
@pytest.mark.timeout(TIMEOUT)
@weight(3)
@number("3.9.2")
@visibility("visible")
def test_samples_show_the_requested_digit(trained):
    """Digits decoded from z ~ N(0, I) with label y are read as y by the judge classifier: at least
    90 % over all labels and at least 50 % for every label (the reference solution: 96-99 % over
    all labels, its worst label 71-90 %, over 8 seeds).
    The grader scores the prescribed network holding the student's weights (locally: your own trained model)."""
    accuracy = measured(trained, "judge_accuracy_per_label")
    mean = sum(accuracy) / len(accuracy)
    worst = min(range(10), key=lambda y: accuracy[y])
    detail = (f"judge accuracy per label 0-9: {[round(a, 2) for a in accuracy]} (100 samples each); "
              f"the reference solution reaches about 0.97 on average")
    check_metric("judge accuracy, mean over labels", mean, JUDGE_MEAN_THRESHOLD,
                 f"samples decoded with label y should be read as y by the judge at least {JUDGE_MEAN_THRESHOLD:.0%} "
                 f"of the time over all labels, got {mean:.1%}; {detail}. Check that decode and encode use one_hot(y).")
    check_metric("judge accuracy, worst label", accuracy[worst], JUDGE_LABEL_THRESHOLD,
                 f"samples decoded with label {worst} are read as {worst} only {accuracy[worst]:.0%} of the time (at "
                 f"least {JUDGE_LABEL_THRESHOLD:.0%} expected for every label); {detail}")


# ---------------------------------------------------------------------------------------------
# Full budget (python -m hw3 cvae's full mode): extra points with grade --device cuda --full-budget
# only; GPU only (on the CPU with --gpu-tests-on-cpu). Issue 16's goal: judge accuracy >= 95 % over
# all labels and >= 85 % for every label. Calibration: the staff's RESULTS-cvae.md, "Full budget"
# (reference, 5 seeds: -ELBO 132.6-133.0; judge mean 0.967-0.991; worst label 0.83-0.93, so the
# per-label goal holds on 4 of 5 seeds and its threshold sits 0.08 below the worst).
# ---------------------------------------------------------------------------------------------

FULL_NEGATIVE_ELBO_THRESHOLD = 136.0
FULL_JUDGE_MEAN_THRESHOLD = 0.95
FULL_JUDGE_LABEL_THRESHOLD = 0.75


@pytest.mark.gpu
@pytest.mark.training
@pytest.mark.timeout(3600)
@weight(2)
@number("3.9.3")
@visibility("visible")
def test_full_budget_grid_on_gpu(cvae, full_budget_device):
    """Full budget (extra points, graded only by ``grade --device cuda --full-budget``). FULL of
    hw3/cvae_experiment.py (10 epochs, the writeup's grid; about 80 CPU-seconds): the test-set
    negative ELBO, and the judge's reading of 100 samples per label."""
    from hw3.cvae_experiment import FULL, LEARNING_RATE
    budget = dict(FULL, lr=LEARNING_RATE, judge_per_label=100)
    trained = train_and_measure(cvae, training_seed(0), budget, 3500, device=full_budget_device)
    nelbo, accuracy = measured(trained, "test_negative_elbo"), measured(trained, "judge_accuracy_per_label")
    mean, worst = sum(accuracy) / len(accuracy), min(accuracy)
    detail = (f"after {FULL['iterations']} iterations of {FULL['batch_size']} (CVAE(latent_dim="
              f"{FULL['latent_dim']})): test negative ELBO {nelbo:.2f} nats, judge accuracy per label 0-9 "
              f"{[round(a, 2) for a in accuracy]} (mean {mean:.3f}). {loss_summary(trained['losses'])}")
    check_metric("test negative ELBO (nats)", nelbo, FULL_NEGATIVE_ELBO_THRESHOLD,
                 f"{detail}; expected at most {FULL_NEGATIVE_ELBO_THRESHOLD}", higher_is_better=False)
    check_metric("judge accuracy, mean over labels", mean, FULL_JUDGE_MEAN_THRESHOLD,
                 f"{detail}; expected at least {FULL_JUDGE_MEAN_THRESHOLD} over all labels")
    check_metric("judge accuracy, worst label", worst, FULL_JUDGE_LABEL_THRESHOLD,
                 f"{detail}; expected at least {FULL_JUDGE_LABEL_THRESHOLD} for every label")
