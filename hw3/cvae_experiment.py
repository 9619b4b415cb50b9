"""``python -m hw3 cvae``: Problem 3, train the conditional VAE of cvae.py on MNIST (handout section 3.9).

The loop is PyTorch's VAE example, conditioned on the label: every iteration encodes a batch of
digits with their labels, draws one latent code per digit by the reparameterization trick,
decodes it, and takes one Adam step on the negative ELBO of cvae.py's ``loss_function``.

After training it
- draws the writeup's 10x10 grid: row y holds ten digits decoded from random codes z ~ N(0, I)
  with the label y (grid.png);
- reconstructs the first test digits (reconstructions.png: originals above, reconstructions below);
- estimates the test-set negative ELBO per image (in nats; lower is better), with the provided
  formula below, not the student's ``loss_function``;
- asks the judge classifier (hw3/judge.py) which digit each of 100 samples per label shows, and
  reports the fraction that match the label they were conditioned on.

    python -m hw3 cvae --impl starter             # the writeup's run: 10 epochs (4690 iterations of 128), 2-d z
    python -m hw3 cvae --impl starter --quick     # 1000 iterations, about a minute on a laptop CPU

Outputs (in --out, default runs/cvae): grid.png, reconstructions.png, losses.png, losses.csv,
judge_accuracy.md/.csv, summary.json.
"""
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hw3 import impl
from hw3.loaders import load_mnist
from hw3.datasets import DatasetError
from hw3.device import default_device
from hw3.experiment import add_budget_arguments, add_common_arguments, chosen_budget, fail, run_settings
from hw3.plots import save_curves, save_image_grid, write_table
from hw3.summary import Deliverable, write_summary
from hw3.training import batches, progress, seed_everything

# 10 epochs of 469 batches, as in PyTorch's VAE example. A 2-d code: the label, not z, must carry the
# digit's identity, so every row of the grid shows its digit (judge accuracy 0.99 against 0.87 with
# CVAE's default of 20 dimensions, which blurs less but mixes digits: the staff's RESULTS-cvae.md).
FULL = dict(iterations=4690, batch_size=128, latent_dim=2)
QUICK = dict(iterations=1000, batch_size=128, latent_dim=2)
LEARNING_RATE = 3e-3
LATENT_DIM = 20           # CVAE's default
NUM_CLASSES = 10
GRID_PER_LABEL = 10       # the 10x10 grid: ten samples of each label
JUDGE_PER_LABEL = 100     # samples per label the judge scores
RECONSTRUCTIONS = 10      # test digits shown with their reconstructions
DELIVERABLES = (  # the writeup's, by output id (hw3/summary.py)
    Deliverable("Generated digits conditioned on each label (one row per label)", ("grid",)),
)


def training_batches(images, labels, batch_size, generator):
    """Endless shuffled passes over (images, labels), in full batches only."""
    while True:
        for x, y in batches(images, labels, batch_size=batch_size, generator=generator):
            if len(x) == batch_size:
                yield x, y


def train_cvae(cvae, iterations, batch_size=128, lr=LEARNING_RATE, latent_dim=LATENT_DIM, seed=0, device=None,
               show_progress=True, train_data=None):
    """Train ``cvae.CVAE(latent_dim=latent_dim)`` on MNIST for ``iterations`` Adam steps on ``cvae.loss_function``.

    ``train_data`` is an optional (images (N,1,28,28) in [0,1], labels (N,)) pair, by default the
    MNIST training set. Returns a dict: ``model`` (the trained CVAE, in eval mode), ``losses``
    (the training loss of every iteration) and ``seconds`` (the training time).
    """
    device = device or default_device()
    data_order = seed_everything(seed)
    images, labels = train_data if train_data is not None else load_mnist(train=True)
    images = images.reshape(len(images), -1)            # (N, 784) in [0, 1]

    model = cvae.CVAE(latent_dim=latent_dim).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    start = time.perf_counter()
    bar = progress(total=iterations, desc="CVAE", unit="it", disable=None if show_progress else True)
    for _, (x, y) in zip(range(iterations), training_batches(images, labels, batch_size, data_order)):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        recon, mu, logvar = model(x, y)
        loss = cvae.loss_function(recon, x, mu, logvar)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if len(losses) % 10 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.1f}")
        bar.update()
    bar.close()
    model.eval()
    return dict(model=model, losses=losses, seconds=time.perf_counter() - start)


def model_device(model):
    return next(model.parameters()).device


@torch.no_grad()
def negative_elbo(model, images, labels, seed=0, batch_size=1000):
    """The test-set negative ELBO per image, in nats, with one latent sample per image.

    Computed here from the model's encoder and decoder only (not from the student's
    ``reparameterize``, ``kl_divergence`` or ``loss_function``), so it measures the model, not the
    loss code: for each image, z = mu + exp(logvar / 2) * eps, and
    -ELBO = sum over pixels of BCE(decode(z, y), x) - 1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)).
    """
    device = model_device(model)
    noise = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].reshape(-1, 784).to(device)
        y = labels[start:start + batch_size].to(device)
        mu, logvar = model.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=noise).to(mu)
        recon = model.decode(z, y).reshape(x.shape)
        bce = F.binary_cross_entropy(recon.clamp(0, 1), x, reduction="none").sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        total += (bce + kl).sum().item()
    return total / len(images)


@torch.no_grad()
def sample(model, per_label, seed=0, latent_dim=None):
    """Decode ``per_label`` random codes z ~ N(0, I) for each label 0-9.

    Returns (images (10 * per_label, 784) in [0, 1] on the CPU, ordered label by label,
    labels (10 * per_label,)).
    """
    device = model_device(model)
    latent_dim = latent_dim or model.latent_dim
    noise = torch.Generator().manual_seed(seed)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(per_label)
    z = torch.randn(len(labels), latent_dim, generator=noise)
    images = model.decode(z.to(device), labels.to(device))
    return images.reshape(len(labels), -1).float().cpu(), labels


def judge_accuracy(model, per_label=JUDGE_PER_LABEL, seed=0, latent_dim=None):
    """The fraction of ``per_label`` samples of each label that the judge classifies as that label.

    Returns a list of 10 floats (label 0 first).
    """
    from hw3.judge import classify

    images, labels = sample(model, per_label, seed=seed, latent_dim=latent_dim)
    predicted, _ = classify(images)
    correct = (predicted.cpu() == labels).float().view(NUM_CLASSES, per_label)
    return correct.mean(1).tolist()


@torch.no_grad()
def reconstruct(model, images, labels, seed=0):
    """(originals (n, 784), reconstructions (n, 784)) of ``images`` with their ``labels``, one latent sample each."""
    device = model_device(model)
    torch.manual_seed(seed)
    recon, _, _ = model(images.to(device), labels.to(device))
    return images.reshape(len(images), -1).cpu(), recon.reshape(len(images), -1).float().cpu()


def configure(parser):
    add_common_arguments(parser, "cvae", f"a short CPU budget: {QUICK['iterations']} iterations of batches of "
                                         f"{QUICK['batch_size']} (unless --iterations/--batch-size say otherwise)")
    add_budget_arguments(parser, FULL, QUICK, {"iterations": (int, "training iterations", "i.e. 10 epochs"),
                                               "batch_size": (int, "batch size"),
                                               "latent_dim": (int, "dimension of the latent code z",
                                                              f"CVAE's own default is {LATENT_DIM}")})
    parser.add_argument("--lr", type=float, default=LEARNING_RATE, help=f"Adam learning rate (default: {LEARNING_RATE})")


def run(args):
    budget = chosen_budget(args, FULL, QUICK)
    iterations, batch_size, latent_dim = budget["iterations"], budget["batch_size"], budget["latent_dim"]
    if iterations < 1 or batch_size < 1 or latent_dim < 1 or not args.lr > 0:
        return fail("--iterations, --batch-size and --latent-dim must be at least 1 and --lr positive", 2)
    try:
        cvae = impl.load("cvae", args.impl)
        result = train_cvae(cvae, iterations, batch_size, lr=args.lr, latent_dim=latent_dim, seed=args.seed)
        model = result["model"]
        test_images, test_labels = load_mnist(train=False)
        grid, _ = sample(model, GRID_PER_LABEL, seed=args.seed + 1, latent_dim=latent_dim)
        originals, recons = reconstruct(model, test_images[:RECONSTRUCTIONS], test_labels[:RECONSTRUCTIONS],
                                        seed=args.seed + 2)
        test_nelbo = negative_elbo(model, test_images, test_labels, seed=args.seed + 3)
    except (NotImplementedError, impl.ImplementationError, DatasetError) as error:
        return fail(str(error))

    out = Path(args.out)
    outputs = {
        "grid": (save_image_grid(grid, out / "grid.png", nrow=GRID_PER_LABEL, row_labels=range(NUM_CLASSES),
                                 title=f"CVAE samples, one row per label (after {iterations} iterations)"),
                 "Samples decoded from z ~ N(0, I), row y with label y"),
        "reconstructions": (save_image_grid(torch.cat([originals, recons]), out / "reconstructions.png",
                                            nrow=RECONSTRUCTIONS, row_labels=["test", "recon."],
                                            title="test digits (top) and their reconstructions (bottom)"),
                            "Test digits (top) and their reconstructions (bottom)"),
        "losses": (save_curves({"training loss": result["losses"]}, out / "losses.png",
                               ylabel="negative ELBO per image (nats)", title="CVAE training loss"),
                   "Training loss (negative ELBO per image) per iteration"),
    }
    with open(out / "losses.csv", "w") as f:
        f.write("iteration,loss\n")
        f.writelines(f"{i},{loss:.4f}\n" for i, loss in enumerate(result["losses"], start=1))
    outputs["losses_table"] = (out / "losses.csv", "Training loss per iteration")

    settings = run_settings(args, iterations=iterations, batch_size=batch_size, lr=args.lr,
                            latent_dim=latent_dim)
    metrics = dict(seconds=round(result["seconds"], 1), final_training_loss=round(result["losses"][-1], 3),
                   test_negative_elbo=round(test_nelbo, 3))
    try:
        from hw3.judge import JudgeError
        accuracy = judge_accuracy(model, JUDGE_PER_LABEL, seed=args.seed + 4, latent_dim=latent_dim)
    except (JudgeError, ValueError) as error:  # everything else still stands
        print(f"note: judge unavailable, generated digits not scored ({error})", file=sys.stderr)
    else:
        metrics["judge_accuracy_per_label"] = [round(a, 3) for a in accuracy]
        metrics["judge_accuracy"] = round(sum(accuracy) / len(accuracy), 4)
        rows = [[label, f"{a:.2f}"] for label, a in enumerate(accuracy)]
        rows.append(["mean", f"{metrics['judge_accuracy']:.3f}"])
        _, csv = write_table(["conditioning label", f"judge accuracy ({JUDGE_PER_LABEL} samples)"], rows,
                             out / "judge_accuracy")
        outputs["judge_accuracy"] = (csv, "How often the judge classifier reads the label a sample was drawn with")

    write_summary(out, "cvae", settings, metrics, outputs)
    print(f"wrote {len(outputs)} figures and tables and summary.json to {out}")
    print(f"test negative ELBO {test_nelbo:.2f} nats per image after {iterations} iterations "
          f"({result['seconds']:.0f} s)")
    if "judge_accuracy" in metrics:
        print("judge accuracy per label: " + " ".join(f"{a:.2f}" for a in metrics["judge_accuracy_per_label"])
              + f" (mean {metrics['judge_accuracy']:.3f})")
    return 0


# --- the training tests across the worker boundary (tests 3.9.1 and 3.9.2) ---------------------
#
# The worker (beside the student's cvae.py) trains with the loop above and returns the trained
# weights as plain tensors; the grader loads those weights into its own copy of the architecture
# that handout section 3.4 prescribes (never the student's code) and measures it with its own test
# set, noise and labels (``measure_trained``).

def train_for_judge(cvae, iterations, batch_size=128, lr=LEARNING_RATE, latent_dim=LATENT_DIM, seed=0,
                    device=None):
    """Worker side of the training tests: ``train_cvae``, then the trained CVAE as data. Returns a
    dict: ``state`` ({name: tensor}, the trained state_dict on the CPU), ``model`` (the trained CVAE
    itself: a handle on the judge's side), ``losses`` and ``seconds``. ``device``: where to train
    ("cuda", "cpu"; default: a GPU if any)."""
    result = train_cvae(cvae, iterations, batch_size, lr=lr, latent_dim=latent_dim, seed=seed, device=device,
                        show_progress=False)
    model = result["model"]
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return dict(state=state, model=model, losses=[float(v) for v in result["losses"]], seconds=result["seconds"])


def measure_trained(cvae, run, seed=0, judge_per_label=JUDGE_PER_LABEL, latent_dim=LATENT_DIM, test_data=None):
    """Judge side of the training tests: the measurements (``judge_evaluation``) of the CVAE the
    worker trained (``run``: what ``train_for_judge`` returned there), or {"mismatch": the message}
    when its weights do not fit the architecture of handout section 3.4.

    The grader scores the prescribed network holding the student's weights: the judge's own CVAE
    (hw3.testing.judge_code("cvae")) loaded with the trained state_dict, its mu and logvar heads
    told apart by the student's own encode on random images. Without the judge's code (a student's
    machine) the student's own trained model is measured in the worker (hw3.testing.WorkerModel),
    on the same codes, labels and test digits, which gives the same numbers for a CVAE built as
    the handout prescribes."""
    from hw3 import testing
    from hw3.remote import RemoteHandle, StudentError
    judge = testing.judge_code("cvae")
    student = run.get("model")
    if judge is None:
        model = testing.WorkerModel(cvae, student, latent_dim=latent_dim)
        return judge_evaluation(model, seed=seed, judge_per_label=judge_per_label, test_data=test_data)
    try:
        model = judge.load_prescribed(run["state"], latent_dim=latent_dim)
    except judge.WeightMismatch as error:
        return {"mismatch": str(error)}
    if isinstance(student, RemoteHandle):
        x, y = torch.rand(20, 784, generator=torch.Generator().manual_seed(seed)), torch.arange(10).repeat(2)
        try:
            encoded = student.encode(x, y)
        except StudentError:
            encoded = None
        if isinstance(encoded, (tuple, list)) and len(encoded) == 2:
            judge.match_heads(model, x, y, *encoded)
    return judge_evaluation(model, seed=seed, judge_per_label=judge_per_label, test_data=test_data)


def judge_evaluation(model, seed=0, judge_per_label=JUDGE_PER_LABEL, test_data=None):
    """The training tests' measurements of a trained CVAE ``model`` (anything with ``encode``,
    ``decode`` and ``latent_dim``) on the MNIST test set, with the judge's own noise and labels. Returns a dict:
    ``test_negative_elbo`` and ``judge_accuracy_per_label`` (10 floats), ``judge_accuracy``."""
    test_images, test_labels = test_data if test_data is not None else load_mnist(train=False)
    accuracy = judge_accuracy(model, judge_per_label, seed=seed + 1, latent_dim=model.latent_dim)
    return dict(test_negative_elbo=negative_elbo(model, test_images, test_labels, seed=seed + 2),
                judge_accuracy_per_label=accuracy, judge_accuracy=sum(accuracy) / len(accuracy))
