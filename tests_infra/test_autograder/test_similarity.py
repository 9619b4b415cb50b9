"""python -m autograder similarity on a synthetic class: copies (renamed variables, reordered functions)
rank above independent implementations, the starter's text does not count, and the solution given as
an extra source flags the submission that copied it."""
import csv
import json
import os
import subprocess
import sys
import zipfile

import pytest

from autograder import REPO_ROOT, similarity

pytestmark = pytest.mark.timeout(300)

STARTER = '''"""Problem 4: a tiny GAN toolkit (synthetic starter)."""
import torch
import torch.nn as nn


def sample_noise(batch_size, dim, seed=None):
    """Uniform random noise on [-1, 1): a float32 tensor of shape (batch_size, dim).

    If seed is not None, first call torch.manual_seed(seed).
    """
    # ================== YOUR CODE HERE (handout section 4.1) =================
    raise NotImplementedError("sample_noise is not implemented yet: see handout section 4.1")
    # ============================ END OF YOUR CODE ===========================


def bce_loss(logits, targets):
    """The mean binary cross-entropy of logits against targets, computed stably."""
    # ================== YOUR CODE HERE (handout section 4.5) =================
    raise NotImplementedError("bce_loss is not implemented yet: see handout section 4.5")
    # ============================ END OF YOUR CODE ===========================


def discriminator_loss(logits_real, logits_fake):
    """The discriminator's loss: real images labelled 1, fakes labelled 0."""
    # ================== YOUR CODE HERE (handout section 4.6) =================
    raise NotImplementedError("discriminator_loss is not implemented yet: see handout section 4.6")
    # ============================ END OF YOUR CODE ===========================


def build_generator(noise_dim=96):
    """The generator: noise -> flattened image in [-1, 1]."""
    # ================== YOUR CODE HERE (handout section 4.3) =================
    raise NotImplementedError("build_generator is not implemented yet: see handout section 4.3")
    # ============================ END OF YOUR CODE ===========================
'''

# The reference solution: the starter with the regions filled in.
SOLUTION_BODIES = {
    "sample_noise": '''    if seed is not None:
        torch.manual_seed(seed)
    noise = torch.rand(batch_size, dim, dtype=torch.float32)
    return 2 * noise - 1
''',
    "bce_loss": '''    neg_abs = -logits.abs()
    per_element = logits.clamp(min=0) - logits * targets + (1 + neg_abs.exp()).log()
    return per_element.mean()
''',
    "discriminator_loss": '''    ones = torch.ones_like(logits_real)
    zeros = torch.zeros_like(logits_fake)
    real_part = bce_loss(logits_real, ones)
    fake_part = bce_loss(logits_fake, zeros)
    return real_part + fake_part
''',
    "build_generator": '''    return nn.Sequential(
        nn.Linear(noise_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 128),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh(), nn.Flatten(),
    )
''',
}

# Alice's own implementation (different from the solution's).
ALICE_BODIES = {
    "sample_noise": '''    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
        torch.manual_seed(seed)
    values = torch.empty((batch_size, dim)).uniform_(-1.0, 1.0, generator=generator)
    return values.float()
''',
    "bce_loss": '''    maxes = torch.maximum(logits, torch.zeros_like(logits))
    softplus_term = torch.log1p(torch.exp(-torch.abs(logits)))
    losses = maxes - logits * targets + softplus_term
    total = losses.sum()
    count = losses.numel()
    return total / count
''',
    "discriminator_loss": '''    real_targets = torch.full(logits_real.shape, 1.0)
    fake_targets = torch.full(logits_fake.shape, 0.0)
    loss_on_real = bce_loss(logits_real, real_targets)
    loss_on_fake = bce_loss(logits_fake, fake_targets)
    combined = loss_on_real + loss_on_fake
    return combined
''',
    "build_generator": '''    layers = [nn.Linear(noise_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024)]
    layers += [nn.Linear(1024, 6272), nn.ReLU(), nn.BatchNorm1d(6272), nn.Unflatten(1, (128, 7, 7))]
    for channels_in, channels_out in ((128, 64),):
        layers += [nn.ConvTranspose2d(channels_in, channels_out, kernel_size=4, stride=2, padding=1),
                   nn.ReLU(), nn.BatchNorm2d(channels_out)]
    layers += [nn.ConvTranspose2d(64, 1, kernel_size=4, stride=2, padding=1), nn.Tanh(), nn.Flatten()]
    model = nn.Sequential(*layers)
    return model
''',
}

# Carol's and Dave's independent implementations.
CAROL_BODIES = {
    "sample_noise": '''    if seed is not None:
        torch.manual_seed(seed)
    return torch.FloatTensor(batch_size, dim).uniform_(-1, 1)
''',
    "bce_loss": '''    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.float(), reduction="mean")
''',
    "discriminator_loss": '''    n_real, n_fake = logits_real.shape[0], logits_fake.shape[0]
    labels = torch.cat([torch.ones(n_real, 1), torch.zeros(n_fake, 1)]).view(-1)
    everything = torch.cat([logits_real.view(-1), logits_fake.view(-1)])
    return bce_loss(everything[:n_real], labels[:n_real]) + bce_loss(everything[n_real:], labels[n_real:])
''',
    "build_generator": '''    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Sequential(nn.Linear(noise_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024),
                                    nn.Linear(1024, 128 * 49), nn.ReLU(), nn.BatchNorm1d(128 * 49))
            self.deconv = nn.Sequential(nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(), nn.BatchNorm2d(64),
                                        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())

        def forward(self, z):
            h = self.fc(z).reshape(-1, 128, 7, 7)
            return self.deconv(h).reshape(z.shape[0], -1)
    return Generator()
''',
}
DAVE_BODIES = {
    "sample_noise": '''    if seed is not None:
        torch.manual_seed(seed)
    shape = [batch_size, dim]
    low, high = -1.0, 1.0
    return low + (high - low) * torch.rand(*shape)
''',
    "bce_loss": '''    probabilities = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)
    result = -(targets * torch.log(probabilities) + (1 - targets) * torch.log(1 - probabilities))
    return torch.mean(result)
''',
    "discriminator_loss": '''    loss = 0.0
    for batch, label in ((logits_real, 1.0), (logits_fake, 0.0)):
        loss = loss + bce_loss(batch, label * torch.ones_like(batch))
    return loss
''',
    "build_generator": '''    width = 1024
    blocks = []
    blocks.append(nn.Linear(noise_dim, width))
    blocks.append(nn.ReLU())
    blocks.append(nn.BatchNorm1d(width))
    blocks.append(nn.Linear(width, 128 * 7 * 7))
    blocks.append(nn.ReLU())
    blocks.append(nn.BatchNorm1d(128 * 7 * 7))
    blocks.append(nn.Unflatten(1, (128, 7, 7)))
    blocks.append(nn.ConvTranspose2d(128, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1)))
    blocks.append(nn.ReLU())
    blocks.append(nn.BatchNorm2d(64))
    blocks.append(nn.ConvTranspose2d(64, 1, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1)))
    blocks.append(nn.Tanh())
    blocks.append(nn.Flatten())
    return nn.Sequential(*blocks)
''',
}


def fill(bodies: dict, order=None, renames=()) -> str:
    """The starter with each region replaced by ``bodies`` (functions in ``order``, names renamed)."""
    chunks = STARTER.split("\n\n\ndef ")
    head, functions = chunks[0], {c.split("(")[0]: "def " + c.rstrip("\n") + "\n" for c in chunks[1:]}
    for name, body in bodies.items():
        text = functions[name]
        start = text.index("    # ====")
        end = text.index("# ============================ END OF YOUR CODE")
        end = text.index("\n", end) + 1
        functions[name] = text[:start] + body + text[end:]
    code = head + "\n\n\n" + "\n\n\n".join(functions[n] for n in (order or functions))
    for old, new in renames:
        code = code.replace(old, new)
    return code


def write_class(root):
    """starter/, solution/ and a class of six submissions (zip and folders)."""
    (root / "starter").mkdir(parents=True)
    (root / "starter" / "gan.py").write_text(STARTER)
    (root / "solution").mkdir()
    (root / "solution" / "gan.py").write_text(fill(SOLUTION_BODIES))
    subs = root / "submissions"
    students = {
        "alice": fill(ALICE_BODIES),
        # Bob copied Alice: every name changed, the functions in another order.
        "bob": fill(ALICE_BODIES, order=["build_generator", "discriminator_loss", "sample_noise", "bce_loss"],
                    renames=[("generator", "gen"), ("values", "out"), ("maxes", "pos_part"), ("softplus_term", "sp"),
                             ("losses", "elementwise"), ("total", "acc"), ("count", "num"), ("real_targets", "y1"),
                             ("fake_targets", "y0"), ("loss_on_real", "lr_"), ("loss_on_fake", "lf_"),
                             ("combined", "result"), ("layers", "mods"), ("channels_in", "cin"),
                             ("channels_out", "cout"), ("model", "net")]),
        "carol": fill(CAROL_BODIES),
        "dave": fill(DAVE_BODIES),
        # Eve copied the solution and renamed its variables.
        "eve": fill(SOLUTION_BODIES, renames=[("noise", "u"), ("neg_abs", "na"), ("per_element", "pe"),
                                              ("ones", "o"), ("zeros", "z"), ("real_part", "a"), ("fake_part", "b")]),
        "frank": STARTER,   # the starter unchanged: nothing of it counts
    }
    for name, code in students.items():
        if name == "carol":
            subs.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(subs / "carol.zip", "w") as z:
                z.writestr("hw3/gan.py", code)
        else:
            (subs / name).mkdir(parents=True)
            (subs / name / "gan.py").write_text(code)
    return subs


@pytest.fixture
def synthetic(tmp_path):
    return tmp_path, write_class(tmp_path)


def ranking(pairs) -> dict:
    return {frozenset((p.a, p.b)): p.similarity for p in pairs}


def test_copies_rank_above_independent_implementations(synthetic):
    root, subs = synthetic
    pairs = similarity.compare(subs, sources={"solution": root / "solution"}, starter=root / "starter",
                               handout=None, problems=("gan",))
    score = ranking(pairs)
    copy = score[frozenset(("alice", "bob"))]
    solution_copy = score[frozenset(("eve", "source:solution"))]
    independent = [s for pair, s in score.items() if pair & {"carol", "dave"} and not pair & {"frank"}]
    assert copy > 0.8 and solution_copy > 0.8, (copy, solution_copy)
    assert max(independent) < 0.5 and min(copy, solution_copy) > max(independent) + 0.3, score
    # The two copies are the top two, students before sources in each pair; sources never pair together.
    assert {frozenset((p.a, p.b)) for p in pairs[:2]} == {frozenset(("alice", "bob")),
                                                           frozenset(("eve", "source:solution"))}
    assert all(not p.a.startswith("source:") for p in pairs)
    # The unchanged starter shares only the given text: no similarity with anyone.
    assert all(s == 0 for pair, s in score.items() if "frank" in pair)


def test_without_the_starter_discounted_the_given_text_counts(synthetic):
    """The discount is what keeps independent solutions apart: without it they share the starter."""
    root, subs = synthetic
    with_starter = ranking(similarity.compare(subs, starter=root / "starter", handout=None, problems=("gan",)))
    without = ranking(similarity.compare(subs, starter=None, handout=None, problems=("gan",)))
    independent = [pair for pair in with_starter if not pair & {"frank"} and pair != frozenset(("alice", "bob"))]
    assert all(without[pair] >= with_starter[pair] for pair in independent)
    assert sum(without[p] for p in independent) > sum(with_starter[p] for p in independent) + 0.3
    # The unchanged starter matches everyone when the given text counts, no one when it is discounted.
    assert all(without[frozenset(("frank", x))] > 0.15 and with_starter[frozenset(("frank", x))] == 0
               for x in ("alice", "bob", "carol", "dave", "eve"))


def test_cli_writes_the_html_and_csv_report(synthetic):
    root, subs = synthetic
    out = root / "report"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run([sys.executable, "-m", "autograder", "similarity", subs, "-o", out,
                          "--source", f"solution={root / 'solution'}", "--starter", root / "starter"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader((out / "pairs.csv").read_text().splitlines()))
    gan = [r for r in rows if r["problem"] == "gan"]
    assert len(gan) == 15 + 6  # 6 students pairwise, and each against the solution
    assert {frozenset((gan[0]["a"], gan[0]["b"])), frozenset((gan[1]["a"], gan[1]["b"]))} == {
        frozenset(("alice", "bob")), frozenset(("eve", "source:solution"))}
    assert [r["with_source"] for r in gan if "source:solution" in (r["a"], r["b"])] == ["yes"] * 6
    page = (out / "report.html").read_text()
    assert "<mark>" in page and 'class="source"' in page and "$" not in page.split("<body>")[1][:200]
    assert page.index("alice") < page.index("carol")  # ranked: the copy's pair comes first
    assert "alice" in run.stdout.splitlines()[0] or "eve" in run.stdout.splitlines()[0]


def test_report_escapes_submission_text(tmp_path):
    evil = "def f():\n    return '<script>alert(1)</script>'\n" * 5
    pairs = similarity.compare(submissions={"<b>x</b>": {"gan": evil}, "y": {"gan": evil}}, starter=None,
                               handout=None, problems=("gan",))
    report, _ = similarity.write_report(pairs, tmp_path / "r")
    page = report.read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "<b>x</b>" not in page


def test_nothing_to_compare_is_one_clear_error(tmp_path):
    (tmp_path / "one" / "alice").mkdir(parents=True)
    (tmp_path / "one" / "alice" / "gan.py").write_text("x = 1\n")
    with pytest.raises(similarity.SimilarityError, match="fewer than two"):
        similarity.compare(tmp_path / "one")
    with pytest.raises(similarity.SimilarityError, match="does not exist"):
        similarity.compare(tmp_path / "nope")


def test_grade_all_with_similarity(tmp_path):
    from test_grade import run_cli, submission, write_suite
    import tempfile
    root = tempfile.mkdtemp(prefix="hw3-test-suite-")
    os.chmod(root, 0o755)
    from pathlib import Path
    suite = write_suite(Path(root))
    folder = tmp_path / "submissions"
    code = "def value():\n    total = 0\n    for i in range(7):\n        total += 6\n    return total\n\n" \
           "def fraction():\n    return 1.0\n\ndef hidden():\n    return 'ok'\n\ndef extra():\n    return 1\n"
    submission(folder / "alice", code)
    submission(folder / "bob", code.replace("total", "acc"))
    out = tmp_path / "grades"
    try:
        run = run_cli("grade-all", folder, "-o", out, "--tests", suite, "-k", "gan", "--similarity")
    finally:
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader((out / "similarity" / "pairs.csv").read_text().splitlines()))
    gan = {(r["a"], r["b"]): float(r["similarity"]) for r in rows if r["problem"] == "gan"}
    assert gan[("alice", "bob")] > 0.9 and "similarity: " in run.stdout
    assert (out / "similarity" / "report.html").is_file()
