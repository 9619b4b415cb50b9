"""``python -m hw3 gan``: Problem 4, train the DCGAN of gan.py on MNIST (handout section 4.8).

The loop is CS231n's ``run_a_gan``: every iteration takes one Adam step on the discriminator
(a batch of real digits against a batch of generated ones), then one on the generator (a fresh
batch of noise). It saves a grid of generated digits after 250, 500 and 1000 iterations and at
the end of training, the two loss curves, and -- when the judge classifier is available -- how
confidently the judge recognizes the generated digits and how many digit classes they cover.

    python -m hw3 gan --impl starter             # the writeup's run: 2340 iterations of 128
    python -m hw3 gan --impl starter --quick     # a few minutes on a laptop CPU

Outputs (in --out, default runs/gan): grid_iter0250.png, grid_iter0500.png, grid_iter1000.png,
grid_final.png, losses.png, losses.csv, summary.json.
"""
import sys
import time
from pathlib import Path

import torch

from hw3 import impl
from hw3.loaders import load_mnist
from hw3.datasets import DatasetError
from hw3.device import default_device
from hw3.experiment import add_budget_arguments, add_common_arguments, chosen_budget, fail, run_settings
from hw3.plots import save_curves, save_image_grid
from hw3.summary import Deliverable, write_summary
from hw3.training import batches, progress, seed_everything

FULL = dict(iterations=2340, batch_size=128)   # CS231n: 5 epochs of 468 full batches of 128
QUICK = dict(iterations=1000, batch_size=16)   # every grid (250, 500, 1000), ~3 CPU-minutes
SNAPSHOTS = (250, 500, 1000)                   # the writeup's grids, plus one at the end
GRID_SIZE = 100                                # digits per grid (10 x 10)
JUDGE_SAMPLES = 1000                           # generated digits the judge scores at the end
COVERAGE_MIN_FRACTION = 0.02                   # a class is covered if >= 2 % of the samples are it
DELIVERABLES = (  # the writeup's, by output id (hw3/summary.py)
    Deliverable("Generated digits after 250 iterations", ("grid_iter0250",)),
    Deliverable("Generated digits after 500 iterations", ("grid_iter0500",)),
    Deliverable("Generated digits after 1000 iterations", ("grid_iter1000",)),
    Deliverable("Generated digits at the end of training", ("grid_final",)),
)


def real_batches(images, batch_size, generator):
    """Endless shuffled passes over the real images, in full batches only (like CS231n, which
    skips the last, smaller batch of each epoch)."""
    while True:
        for (x,) in batches(images, batch_size=batch_size, generator=generator):
            if len(x) == batch_size:
                yield x


@torch.no_grad()
def generate(G, noise):
    """Images in [0, 1], shape (N, 784), that G makes from ``noise`` (N, noise_dim).

    G runs in evaluation mode (its batch norms use their running statistics), so an image
    depends on its own noise vector only; G is put back in training mode afterwards.
    """
    device = next(G.parameters()).device
    G.eval()
    try:
        images = G(noise.to(device))
    finally:
        G.train()
    return ((images + 1) / 2).clamp(0, 1).cpu()


def train_gan(gan, iterations, batch_size=128, seed=0, device=None, snapshot_at=SNAPSHOTS,
              grid_size=GRID_SIZE, show_progress=True):
    """Train gan.py's DCGAN on MNIST for ``iterations`` discriminator + generator steps.

    Returns a dict: ``G`` and ``D`` (the trained networks, in training mode), ``d_loss`` and
    ``g_loss`` (one float per iteration), ``snapshots`` ({iteration: images (grid_size, 784)
    in [0, 1]} for each iteration of ``snapshot_at`` reached, generated from one fixed batch of
    noise) and ``seconds`` (the training time).
    """
    device = device or default_device()
    data_order = seed_everything(seed)
    images, _ = load_mnist(train=True)
    real_images = images.view(len(images), -1) * 2 - 1   # (60000, 784) in [-1, 1], like G's output

    D = gan.build_discriminator().to(device)
    G = gan.build_generator(gan.NOISE_DIM).to(device)
    D_solver = gan.get_optimizer(D)
    G_solver = gan.get_optimizer(G)
    fixed_noise = gan.sample_noise(grid_size, gan.NOISE_DIM)  # the same digits at every snapshot

    d_losses, g_losses, snapshots = [], [], {}
    start = time.perf_counter()
    bar = progress(total=iterations, desc="DCGAN", unit="it", disable=None if show_progress else True)
    for iteration, x in zip(range(1, iterations + 1), real_batches(real_images, batch_size, data_order)):
        # Discriminator step: real digits are labelled real, generated ones fake.
        D_solver.zero_grad()
        logits_real = D(x.to(device))
        fake_images = G(gan.sample_noise(batch_size, gan.NOISE_DIM).to(device)).detach()
        logits_fake = D(fake_images)
        d_loss = gan.discriminator_loss(logits_real, logits_fake)
        d_loss.backward()
        D_solver.step()

        # Generator step: fresh noise; G is rewarded when D calls its digits real.
        G_solver.zero_grad()
        fake_images = G(gan.sample_noise(batch_size, gan.NOISE_DIM).to(device))
        g_loss = gan.generator_loss(D(fake_images))
        g_loss.backward()
        G_solver.step()

        d_losses.append(d_loss.item())
        g_losses.append(g_loss.item())
        if iteration in snapshot_at:
            snapshots[iteration] = generate(G, fixed_noise)
        if iteration % 10 == 0:
            bar.set_postfix(d_loss=f"{d_losses[-1]:.3f}", g_loss=f"{g_losses[-1]:.3f}")
        bar.update()
    bar.close()
    snapshots["final"] = generate(G, fixed_noise)
    return dict(G=G, D=D, d_loss=d_losses, g_loss=g_losses, snapshots=snapshots,
                seconds=time.perf_counter() - start)


def judge_score(images):
    """How well the judge recognizes ``images`` (N, 784) or (N, 1, 28, 28) in [0, 1].

    Returns a dict: ``mean_confidence`` (the judge's mean probability of its predicted class),
    ``coverage`` (how many of the 10 digit classes at least COVERAGE_MIN_FRACTION of the images
    are classified as: a collapsed generator that draws one digit covers 1) and ``class_counts``.
    """
    from hw3.judge import classify  # the judge classifier of hw3/judge.py

    labels, confidences = classify(images)
    counts = torch.bincount(labels.cpu(), minlength=10)
    return dict(mean_confidence=float(confidences.float().mean()),
                coverage=int((counts >= COVERAGE_MIN_FRACTION * len(labels)).sum()),
                class_counts=counts.tolist())


def configure(parser):
    add_common_arguments(parser, "gan", f"a few-minute CPU budget: {QUICK['iterations']} iterations of batches of "
                                        f"{QUICK['batch_size']} (unless --iterations/--batch-size say otherwise)")
    add_budget_arguments(parser, FULL, QUICK, {"iterations": (int, "training iterations", "i.e. 5 epochs"),
                                               "batch_size": (int, "batch size")})


def run(args):
    budget = chosen_budget(args, FULL, QUICK)
    iterations, batch_size = budget["iterations"], budget["batch_size"]
    if iterations < 1 or batch_size < 2:
        return fail("--iterations must be at least 1 and --batch-size at least 2 (batch norm needs two samples)", 2)
    try:
        gan = impl.load("gan", args.impl)
        result = train_gan(gan, iterations, batch_size, seed=args.seed)
    except (NotImplementedError, impl.ImplementationError, DatasetError) as error:
        return fail(str(error))

    out = Path(args.out)
    outputs = {}
    for key, images in result["snapshots"].items():
        name = "final" if key == "final" else f"iter{key:04d}"
        title = f"after {iterations} iterations (final)" if key == "final" else f"after {key} iterations"
        outputs[f"grid_{name}"] = (save_image_grid(images, out / f"grid_{name}.png", nrow=10, title=title),
                                   f"Generated digits {title}")
    outputs["losses"] = (save_curves({"discriminator": result["d_loss"], "generator": result["g_loss"]},
                                     out / "losses.png", title="DCGAN losses (one point per iteration)"),
                         "Discriminator and generator losses per iteration")
    with open(out / "losses.csv", "w") as f:
        f.write("iteration,d_loss,g_loss\n")
        f.writelines(f"{i},{d:.6f},{g:.6f}\n"
                     for i, (d, g) in enumerate(zip(result["d_loss"], result["g_loss"]), start=1))
    outputs["losses_table"] = (out / "losses.csv", "Losses per iteration")

    settings = run_settings(args, iterations=iterations, batch_size=batch_size)
    metrics = dict(seconds=round(result["seconds"], 1),
                   iterations_per_second=round(iterations / result["seconds"], 3),
                   final_d_loss=result["d_loss"][-1], final_g_loss=result["g_loss"][-1])
    from hw3.judge import JudgeError
    try:
        noise = gan.sample_noise(JUDGE_SAMPLES, gan.NOISE_DIM, seed=args.seed + 1)
        metrics["judge"] = judge_score(generate(result["G"], noise))
    except JudgeError as error:  # everything else still stands
        print(f"note: judge unavailable, generated digits not scored ({error})", file=sys.stderr)

    write_summary(out, "gan", settings, metrics, outputs)
    print(f"wrote {len(outputs) - 1} figures, losses.csv and summary.json to {out}")
    if "judge" in metrics:
        print(f"judge: mean confidence {metrics['judge']['mean_confidence']:.3f}, "
              f"coverage {metrics['judge']['coverage']}/10 classes")
    return 0


# --- the training test across the worker boundary (test 4.8.1) --------------------------------
#
# The worker (beside the student's gan.py) trains with the loop above and returns the trained
# generator's weights as plain tensors, and the losses; the grader loads those weights into its own
# copy of the generator that handout section 4.3 prescribes (never the student's code), draws its
# own noise and scores the digits it generates with the judge classifier (``generated_digits``).

def train_for_judge(gan, iterations, batch_size=128, seed=0, grid_size=GRID_SIZE, device=None):
    """Worker side of the training test: ``train_gan`` (no snapshots but the final one, which
    ``train_gan`` makes from ``grid_size`` noise vectors it draws first), then the trained generator
    as data. Returns a dict: ``generator`` ({name: tensor}, G's trained state_dict on the CPU, its
    batch norms' running statistics included), ``G`` (the trained generator itself: a handle on the
    judge's side), ``d_loss`` and ``g_loss`` (one float per iteration) and ``seconds``. No images:
    the judge draws its own noise. ``device``: where to train ("cuda", "cpu"; default: a GPU if any)."""
    result = train_gan(gan, iterations, batch_size, seed=seed, device=device, snapshot_at=(),
                       grid_size=grid_size, show_progress=False)
    state = {name: tensor.detach().cpu().clone() for name, tensor in result["G"].state_dict().items()}
    return dict(generator=state, G=result["G"], d_loss=[float(v) for v in result["d_loss"]],
                g_loss=[float(v) for v in result["g_loss"]], seconds=float(result["seconds"]))


def generated_digits(gan, result, count, noise_dim=96, seed=0):
    """Judge side of the training test: ``count`` digits (count, 784) in [0, 1] that the generator
    the worker trained (``result``: what ``train_for_judge`` returned there) makes from the judge's
    own noise (``judge_noise(count, noise_dim, seed)``), in evaluation mode.

    The grader scores the prescribed network holding the student's weights: the judge's own
    generator (hw3.testing.judge_code("gan")) loaded with the trained state_dict, which raises
    WeightMismatch naming the layer when the weights do not fit it. Without the judge's code (a
    student's machine) the student's own trained generator makes the digits in the worker
    (hw3.testing.WorkerModel) from the same noise, which gives the same digits for a generator
    built as the handout prescribes."""
    from hw3 import testing
    judge = testing.judge_code("gan")
    noise = judge_noise(count, noise_dim, seed=seed)
    if judge is None:
        return generate(testing.WorkerModel(gan, result.get("G")), noise)
    return generate(judge.load_generator(result.get("generator"), noise_dim=noise_dim), noise)


def judge_noise(count, noise_dim=96, seed=0):
    """The judge's own noise for scoring a generator: ``count`` vectors uniform on [-1, 1) from a
    torch.Generator seeded with ``seed`` (the student's sample_noise plays no part)."""
    return torch.rand(count, noise_dim, generator=torch.Generator().manual_seed(seed)) * 2 - 1
