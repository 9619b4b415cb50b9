"""The judge: a small MNIST classifier that scores generated digits (Problems 3 and 4).

A conditional VAE asked for a "7" should draw something the judge reads as a 7; a GAN's samples
should be digits the judge reads with confidence. The judge is provided code, trained once by

    python -m hw3 judge train            # 3 epochs, seed 0: 99.27 % MNIST test accuracy
    python -m hw3 judge check            # verify the committed weights and report test accuracy

(The committed weights took 165 s to train with OMP_NUM_THREADS=1 on a 2-core machine that other
jobs kept busy; on a busy machine one thread is several times faster than two contending ones.)

Its weights are committed as ``hw3/judge.pt`` (a state_dict) and their SHA-256 is recorded below
(``JUDGE_SHA256``); loading refuses a file whose checksum differs, so no grade ever depends on a
silently changed judge.

Public API (the tests rely on exactly this):

- ``load_judge(device=None) -> nn.Module``: the classifier in eval mode, cached per device; input
  (N,1,28,28) float in [0,1], output logits (N,10).
- ``classify(images) -> (labels, confidences)``: images (N,784), (N,28,28) or (N,1,28,28) with
  values in [0,1], on any device; returns labels int64 (N,) and confidences float32 (N,) (the
  largest softmax probability), both on the images' device.

Input range policy: the judge was trained on MNIST pixels in [0,1]. ``classify`` clamps values
within ``RANGE_TOLERANCE`` of that interval (rounding noise from a sigmoid or a tanh rescale) and
raises ``ValueError`` for anything further out, for NaN/inf, for integer tensors (0-255 pixels) and
for wrong shapes: an image in [-1,1] (a tanh generator's raw output) or in [0,255] would otherwise
be scored as garbage without any warning. Map tanh outputs with ``(x + 1) / 2`` first.
"""
import re
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from hw3.files import sha256_of as sha256

WEIGHTS = Path(__file__).resolve().parent / "judge.pt"
# SHA-256 of hw3/judge.pt, written by ``python -m hw3 judge train`` (do not edit by hand).
JUDGE_SHA256 = "57e199d3aaaffc61d9a9c9ef37bd20b32a9147c6abb027c02cb6bc30f494a54e"
RANGE_TOLERANCE = 1e-3
TRAIN_COMMAND = "python -m hw3 judge train"


class JudgeError(RuntimeError):
    """The judge's weights file is missing, corrupted or does not match the recorded checksum."""


class Judge(nn.Module):
    """Three strided conv blocks (conv-BN-ReLU) and a dropout-regularised linear classifier.

    Input (N,1,28,28) in [0,1]; output logits (N,10). 114,122 parameters. Strided convolutions
    instead of max-pooling keep training cheap on a CPU (about a minute per epoch on one core).
    """

    def __init__(self):
        super().__init__()

        def block(c_in, c_out, k):
            return [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(*block(1, 32, 5), *block(32, 64, 3), *block(64, 128, 3))  # 14, 7, 4
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 16, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def verify_weights(path: Path = WEIGHTS, expected: str = None) -> None:
    """Raise JudgeError unless ``path`` exists and its SHA-256 is the recorded one."""
    expected = expected or JUDGE_SHA256
    fix = (f"restore the committed file (git checkout -- hw3/judge.pt) or retrain the judge with "
           f"`{TRAIN_COMMAND}`, which also records the new checksum in hw3/judge.py")
    if not Path(path).is_file():
        raise JudgeError(f"judge weights {path} are missing (expected SHA-256 {expected}); {fix}")
    actual = sha256(path)
    if actual != expected:
        raise JudgeError(f"judge weights {path} do not match the recorded checksum: expected SHA-256 "
                         f"{expected}, got {actual}; {fix}")


_CACHE = {}


def load_judge(device=None, path: Path = WEIGHTS, expected_sha256: str = None) -> nn.Module:
    """The judge in eval mode on ``device`` (default: hw3.device.default_device()), cached per device.

    Checks the weights' SHA-256 first (JudgeError if they differ). Its parameters do not require
    gradients. Input (N,1,28,28) float in [0,1]; output logits (N,10).
    """
    from hw3.device import default_device

    device = torch.device(device) if device is not None else default_device()
    key = (str(device), str(path), expected_sha256)
    if key not in _CACHE:
        verify_weights(path, expected_sha256)
        model = Judge()
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as error:  # a file with the right checksum never gets here; a stale constant might
            raise JudgeError(f"judge weights {path} could not be loaded ({error}); retrain with `{TRAIN_COMMAND}`")
        model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        _CACHE[key] = model
    return _CACHE[key]


def as_judge_input(images: torch.Tensor) -> torch.Tensor:
    """Validate and reshape images for the judge: returns float32 (N,1,28,28) in [0,1] (detached).

    Accepts (N,784), (N,28,28) or (N,1,28,28); values within RANGE_TOLERANCE of [0,1] are clamped,
    anything else raises ValueError (see the module docstring for why).
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"the judge expects a torch.Tensor of images, got {type(images).__name__}")
    if not images.is_floating_point():
        raise ValueError(f"the judge expects float images with values in [0,1], got dtype {images.dtype} "
                         f"(for 0-255 pixels divide by 255 first)")
    if images.dim() == 0 or tuple(images.shape[1:]) not in ((784,), (28, 28), (1, 28, 28)):
        raise ValueError(f"the judge expects images of shape (N,784), (N,28,28) or (N,1,28,28), "
                         f"got {tuple(images.shape)}")
    images = images.detach().float().reshape(-1, 1, 28, 28)
    if images.numel() == 0:
        return images
    if not torch.isfinite(images).all():
        raise ValueError("the judge got images containing NaN or infinite values")
    low, high = images.min().item(), images.max().item()
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(f"the judge expects pixel values in [0,1], got values in [{low:.4g}, {high:.4g}] "
                         f"(map tanh outputs in [-1,1] with (x + 1) / 2; sigmoid outputs are already in [0,1])")
    return images.clamp(0, 1)


@torch.no_grad()
def classify(images: torch.Tensor, batch_size: int = 2000):
    """Judge's reading of each image.

    Inputs:
    - images: (N,784), (N,28,28) or (N,1,28,28) float tensor, values in [0,1], any device

    Returns a tuple of:
    - labels: int64 (N,), the most probable digit, on the images' device
    - confidences: float32 (N,), its softmax probability, on the images' device
    """
    device = images.device if isinstance(images, torch.Tensor) else None
    x = as_judge_input(images)
    model = load_judge(device)
    model.eval()  # in case a caller switched the cached module to training mode
    labels, confidences = [], []
    for start in range(0, len(x), batch_size):
        probs = F.softmax(model(x[start:start + batch_size]), dim=1)
        confidence, label = probs.max(dim=1)
        labels.append(label)
        confidences.append(confidence)
    if not labels:
        return torch.empty(0, dtype=torch.int64, device=device), torch.empty(0, device=device)
    return torch.cat(labels), torch.cat(confidences)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 2000) -> float:
    """Fraction of ``images`` (N,1,28,28) that ``model`` labels correctly."""
    device = next(model.parameters()).device
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(images[start:start + batch_size].to(device))
            correct += (logits.argmax(1).cpu() == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image of x (N,1,28,28) by up to ``max_shift`` pixels in each direction (zero fill)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, 1, h, w + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, 1, h, w)
    return out.gather(3, cols)


def train(epochs: int = 3, seed: int = 0, batch_size: int = 128, lr: float = 3e-3, max_shift: int = 2,
          device=None, log=print) -> tuple:
    """Train a fresh judge on MNIST (Adam, one-cycle learning rate, random shifts); returns (model, test accuracy)."""
    from hw3.loaders import load_mnist
    from hw3.device import default_device
    from hw3.training import batches, progress, seed_everything

    device = torch.device(device) if device is not None else default_device()
    generator = seed_everything(seed)
    train_x, train_y = load_mnist(train=True)
    test_x, test_y = load_mnist(train=False)
    model = Judge().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(train_x) + batch_size - 1) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    for epoch in range(1, epochs + 1):
        model.train()
        bar = progress(batches(train_x, train_y, batch_size=batch_size, generator=generator),
                       total=(len(train_x) + batch_size - 1) // batch_size, desc=f"judge epoch {epoch}/{epochs}")
        for x, y in bar:
            x = random_shift(x, max_shift, generator) if max_shift else x
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        log(f"epoch {epoch}: test accuracy {accuracy(model, test_x, test_y):.4f}")
    return model, accuracy(model, test_x, test_y)


def record_checksum(digest: str, source: Path = Path(__file__)) -> None:
    """Rewrite the JUDGE_SHA256 constant of this file."""
    text = source.read_text()
    new, count = re.subn(r'^JUDGE_SHA256 = "[0-9a-f]{64}"$', f'JUDGE_SHA256 = "{digest}"', text, flags=re.M)
    if count != 1:
        raise JudgeError(f"could not find the JUDGE_SHA256 line in {source}")
    source.write_text(new)


def configure(parser):
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = actions.add_parser("train", help="train the judge, save its weights and record their checksum")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--out", type=Path, default=WEIGHTS,
                   help="weights file (default hw3/judge.pt; only the default updates JUDGE_SHA256)")
    c = actions.add_parser("check", help="verify the weights' checksum and report MNIST test accuracy")
    c.add_argument("--weights", type=Path, default=WEIGHTS)
    c.add_argument("--sha256", default=None, help="expected checksum (default: the recorded JUDGE_SHA256)")


def run(args):
    if args.action == "train":
        if args.epochs < 1:
            raise SystemExit("error: --epochs must be at least 1")
        start = time.time()
        model, acc = train(epochs=args.epochs, seed=args.seed)
        state = {k: v.cpu() for k, v in model.state_dict().items()}
        from hw3.loaders import save_atomically

        save_atomically(state, args.out)
        digest = sha256(args.out)
        print(f"test accuracy {acc:.4f} after {args.epochs} epochs (seed {args.seed}, {time.time() - start:.0f} s); "
              f"saved {args.out} ({args.out.stat().st_size} bytes), SHA-256 {digest}")
        if args.out.resolve() == WEIGHTS:
            record_checksum(digest)
            print(f"recorded the checksum in {Path(__file__).name}")
        else:
            print(f"check it with: python -m hw3 judge check --weights {args.out} --sha256 {digest}")
        return 0 if acc >= 0.99 else 1
    try:
        model = load_judge("cpu", args.weights, args.sha256)
    except JudgeError as error:
        raise SystemExit(f"error: {error}")
    from hw3.loaders import load_mnist

    test_x, test_y = load_mnist(train=False)
    acc = accuracy(model, test_x, test_y)
    print(f"judge {args.weights}: SHA-256 verified, MNIST test accuracy {acc:.4f}")
    return 0 if acc >= 0.99 else 1
