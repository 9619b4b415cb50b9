"""``python -m hw3 contrastive``: Problem 2, a Siamese network trained with your ContrastiveLoss
(handout section 2.2), and for extra credit your FaceEmbeddingNet on LFW faces (section 2.4).

MNIST: MnistEmbeddingNet (hw3/siamese.py, a 2-D embedding by default, so it is plotted as is) is
trained on fresh balanced batches of pairs of training digits (half the same digit, label 0; half
two different digits, label 1). Deliverables: the learning curve of the training loss, the
embedding of the training set and of the test set coloured by digit, and 20 pairs from each set
with their distances (figure and table); metrics: k-nearest-neighbour accuracy of the test
embeddings, mean distances of similar and dissimilar test pairs, and pair verification.

LFW (extra credit): your FaceEmbeddingNet is trained on the faces of the people of the official
peopleDevTrain split only, then evaluated on the official pairsDevTest pairs (500 matched, 500
mismatched, all of people never seen in training): ROC AUC, and verification accuracy at the
distance threshold that is best on the official pairsDevTrain pairs (training people).
Deliverables as for MNIST, the embeddings shown for the ten people with the most pictures.

    python -m hw3 contrastive --impl starter             # full budgets
    python -m hw3 contrastive --impl starter --quick     # a few minutes on a laptop CPU
    python -m hw3 contrastive --impl starter --lfw no    # MNIST only

Outputs (in --out, default runs/contrastive): mnist_loss_curve.png, mnist_embedding_train.png,
mnist_embedding_test.png, mnist_pairs_train.{png,csv,md}, mnist_pairs_test.{png,csv,md},
mnist_losses.csv, the same with lfw_ for faces, and summary.json.
"""
import sys
import time
from pathlib import Path

import torch

from hw3 import impl
from hw3.loaders import load_lfw_images, load_mnist, read_lfw_pairs, read_lfw_people
from hw3.datasets import DatasetError
from hw3.device import default_device
from hw3.experiment import add_budget_arguments, add_common_arguments, chosen_budget, fail, run_settings
from hw3.plots import save_curves, write_table
from hw3.summary import Deliverable, write_summary
from hw3.siamese import (MnistEmbeddingNet, SiameseNetwork, augment_faces, best_threshold, display_pairs,
                         embed, knn_accuracy, make_pairs, pair_distances, plot_embedding, plot_pairs, roc_auc,
                         train_siamese, verification_accuracy)
from hw3.training import seed_everything

MNIST_FULL = dict(iterations=2000, batch_size=128, lr=3e-3)
MNIST_QUICK = dict(iterations=500, batch_size=64, lr=3e-3)
LFW_FULL = dict(iterations=2000, batch_size=128, lr=2e-3)
LFW_QUICK = dict(iterations=400, batch_size=64, lr=2e-3)
MARGIN = 2.0                 # ContrastiveLoss' default, for both datasets
LFW_SIZE, LFW_CROP = 32, 120  # faces: the central 120x120 of the 250x250 deep-funneled image, at 32x32
LFW_EMBEDDING_DIM = 64
EMBEDDING_POINTS = 10000     # MNIST images shown in an embedding plot (and kNN reference / queries)
EVAL_PAIRS = 2000            # MNIST pairs for the distance / verification metrics
KNN_K = 5
LFW_PEOPLE_SHOWN = 10
LFW_PICTURES_SHOWN = 40   # at most, per person

DELIVERABLES = (  # the writeup's, by output id (hw3/summary.py); pairs: a figure and its table
    Deliverable("MNIST: learning curve of the contrastive loss on training pairs", ("mnist_loss_curve",)),
    Deliverable("MNIST: embedding of the training set", ("mnist_embedding_train",)),
    Deliverable("MNIST: embedding of the test set", ("mnist_embedding_test",)),
    Deliverable("MNIST: distances of 20 pairs from the training set",
                ("mnist_pairs_train", "mnist_pairs_train_table")),
    Deliverable("MNIST: distances of 20 pairs from the test set", ("mnist_pairs_test", "mnist_pairs_test_table")),
    Deliverable("LFW (extra credit): learning curve of the contrastive loss", ("lfw_loss_curve",), True),
    Deliverable("LFW (extra credit): embedding of the training people", ("lfw_embedding_train",), True),
    Deliverable("LFW (extra credit): embedding of the test people", ("lfw_embedding_test",), True),
    Deliverable("LFW (extra credit): distances of 20 pairs from the training people",
                ("lfw_pairs_train", "lfw_pairs_train_table"), True),
    Deliverable("LFW (extra credit): distances of 20 pairs from the test people",
                ("lfw_pairs_test", "lfw_pairs_test_table"), True),
)


# --- MNIST ----------------------------------------------------------------------------------------

def train_mnist(contrastive, iterations, batch_size=128, lr=3e-3, margin=MARGIN, embedding_dim=2, seed=0,
                device=None, train_images=None, train_labels=None, show_progress=True):
    """Train MnistEmbeddingNet with ``contrastive.ContrastiveLoss(margin)`` on MNIST pairs.

    ``train_images``/``train_labels`` default to the 60,000 MNIST training digits. Returns a dict:
    ``net`` (the trained embedding network), ``losses`` (one float per iteration), ``seconds``.
    """
    device = device or default_device()
    generator = seed_everything(seed)
    if train_images is None:
        train_images, train_labels = load_mnist(train=True)
    criterion = contrastive.ContrastiveLoss(margin=margin)
    net = MnistEmbeddingNet(embedding_dim).to(device)
    start = time.perf_counter()
    losses = train_siamese(SiameseNetwork(net), train_images, train_labels, criterion, iterations, batch_size,
                           lr=lr, generator=generator, device=device, desc="Siamese MNIST",
                           show_progress=show_progress)
    return dict(net=net, losses=losses, seconds=time.perf_counter() - start)


def evaluate_embedding(z_reference, reference_labels, z_query, query_labels, seed=0, pairs=EVAL_PAIRS, k=KNN_K):
    """Metrics of an embedding: kNN accuracy of the queries against the reference set, and on
    ``pairs`` balanced random pairs of queries (and of references, to choose the threshold): mean
    distance of similar and dissimilar pairs, ROC AUC, verification accuracy."""
    generator = torch.Generator().manual_seed(seed + 12345)
    r1, r2, r_label = make_pairs(reference_labels, pairs, generator)
    q1, q2, q_label = make_pairs(query_labels, pairs, generator)
    d_reference, d_query = pair_distances(z_reference, r1, r2), pair_distances(z_query, q1, q2)
    threshold, reference_accuracy = best_threshold(d_reference, r_label == 0)
    return dict(
        knn_accuracy=knn_accuracy(z_reference, reference_labels, z_query, query_labels, k=k), knn_k=k,
        mean_similar_distance=d_query[q_label == 0].mean().item(),
        mean_dissimilar_distance=d_query[q_label == 1].mean().item(),
        roc_auc=roc_auc(d_query, q_label == 0),
        threshold=threshold, train_pairs_accuracy=reference_accuracy,
        verification_accuracy=verification_accuracy(d_query, q_label == 0, threshold))


def mnist_convergence(contrastive, seed, iterations, batch_size, lr=3e-3, references=2000, queries=2000,
                      pairs=2000, train=None, test=None, device=None):
    """What the MNIST convergence tests check, after training under a fixed budget (one seed).

    Trains MnistEmbeddingNet (2-D) with ``contrastive.ContrastiveLoss()`` for ``iterations`` batches of
    ``batch_size`` pairs, then embeds the first ``references`` training digits and the first
    ``queries`` test digits. Returns a dict: ``knn`` (5-NN accuracy of those test digits against
    those training digits), ``similar`` / ``dissimilar`` (mean distance of the similar / dissimilar
    pairs among ``pairs`` balanced random pairs of those test digits), ``final_loss`` (mean of the
    last 20 losses), ``seconds`` (training time) and ``finite`` (whether every loss was finite).

    With a :class:`hw3.remote.RemoteModule` (the graded tests), the worker trains (``train_mnist``,
    on the training digits it loads) and returns the trained network and the losses; this side
    embeds the digits with it (:func:`judged_embedding_net`) and computes every metric itself, on
    the test digits and labels only it holds. ``device`` is then the worker's.
    """
    train_images, train_labels = train or load_mnist(train=True)
    test_images, test_labels = test or load_mnist(train=False)
    if is_remote(contrastive):
        result = contrastive.provided("hw3.contrastive_experiment.train_mnist", iterations, batch_size, lr=lr,
                                      seed=seed, show_progress=False)
        result = result if type(result) is dict else {}
        net = judged_embedding_net(contrastive, result.get("net"))
        losses = checked_losses(result.get("losses"), iterations)
        seconds = result.get("seconds") if type(result.get("seconds")) is float else float("nan")
    else:
        result = train_mnist(contrastive, iterations, batch_size, lr=lr, seed=seed, device=device,
                             train_images=train_images, train_labels=train_labels, show_progress=False)
        net, losses, seconds = result["net"], result["losses"], result["seconds"]
    z_ref = embed(net, train_images[:references])
    z_test = embed(net, test_images[:queries])
    finite = bool(torch.isfinite(torch.tensor(losses)).all()) and bool(torch.isfinite(z_test).all())
    knn = knn_accuracy(z_ref, train_labels[:references], z_test, test_labels[:queries], k=KNN_K) if finite else 0.0
    i1, i2, label = make_pairs(test_labels[:queries], pairs, torch.Generator().manual_seed(seed))
    d = pair_distances(z_test, i1, i2)
    return dict(seconds=seconds, knn=knn, similar=d[label == 0].mean().item(),
                dissimilar=d[label == 1].mean().item(), final_loss=sum(losses[-20:]) / 20,
                finite=finite)


# --- the judge's side of the worker boundary -----------------------------------------------------

class BadResult(AssertionError):
    """What the worker returned is not what the provided code returns (a failed test says so)."""


def is_remote(contrastive) -> bool:
    """Whether ``contrastive`` is a worker's proxy (the graded tests) rather than the imported module."""
    from hw3.remote import RemoteModule
    return isinstance(contrastive, RemoteModule)


def weights_of(net, what: str) -> list:
    """The (name, tensor) pairs of a trained network that the worker returned as a handle."""
    from hw3.remote import RemoteHandle
    if not isinstance(net, RemoteHandle):
        raise BadResult(f"{what}: the worker returned {type(net).__name__}, not a network")
    state = net.state_dict()
    if type(state) is not dict:
        raise BadResult(f"{what}: its state_dict is a {type(state).__name__}, not a dict of tensors")
    return list(state.items())


def judged_embedding_net(contrastive, net):
    """The MnistEmbeddingNet the worker trained (``net``, its handle), as the convergence tests embed
    digits with it. The grader scores the prescribed network holding the student's weights: the
    judge's own MnistEmbeddingNet (hw3.testing.judge_code("contrastive")) loaded with the trained
    tensors, in order (a mismatch names the layer). Without the judge's code (a student's machine)
    the trained network embeds the digits in the worker (hw3.testing.WorkerModel): the same numbers."""
    from hw3 import testing
    judge = testing.judge_code("contrastive")
    if judge is None:
        from hw3.remote import RemoteHandle
        if not isinstance(net, RemoteHandle):
            raise BadResult(f"the trained MnistEmbeddingNet: the worker returned {type(net).__name__}, not a network")
        return testing.WorkerModel(contrastive, net)
    return judge.rebuild_mnist_embedding(weights_of(net, "the trained MnistEmbeddingNet"))


def checked_losses(losses, iterations: int) -> list:
    """The worker's training losses: a list of ``iterations`` numbers (NaN for anything else)."""
    if type(losses) is not list or len(losses) != iterations:
        got = f"a list of {len(losses)}" if type(losses) is list else type(losses).__name__
        raise BadResult(f"training should report {iterations} losses, one per iteration; the worker returned {got}")
    return [float(v) if type(v) in (int, float) else float("nan") for v in losses]


# --- LFW --------------------------------------------------------------------------------------------

def load_lfw_people_split(split, size=LFW_SIZE, crop=LFW_CROP):
    """The faces of the people of an official people split ("peopleDevTrain.txt", "peopleDevTest.txt").

    Returns ``(images, labels, names, files)``: uint8 (M,1,size,size), int64 (M,) person numbers,
    the people's names (names[label]) and the image files (relative to lfw-deepfunneled/).
    """
    all_images, all_files = load_lfw_images(size=size, crop=crop, grayscale=True)
    names = sorted(read_lfw_people(split))
    number = {name: i for i, name in enumerate(names)}
    keep = [i for i, f in enumerate(all_files) if f.split("/")[0] in number]
    labels = torch.tensor([number[all_files[i].split("/")[0]] for i in keep])
    return all_images[keep], labels, names, [all_files[i] for i in keep]


def load_lfw_pairs(split, size=LFW_SIZE, crop=LFW_CROP):
    """An official pairs file ("pairsDevTrain.txt", "pairsDevTest.txt") as tensors.

    Returns ``(images, index1, index2, same)``: the uint8 faces (M,1,size,size) the pairs use, the
    (N,) indices into them of each pair's two faces, and (N,) bool, True for a matched pair.
    """
    all_images, all_files = load_lfw_images(size=size, crop=crop, grayscale=True)
    position = {f: i for i, f in enumerate(all_files)}
    pairs = read_lfw_pairs(split)
    used = sorted({position[f] for a, b, _ in pairs for f in (a, b)})
    local = {i: j for j, i in enumerate(used)}
    index1 = torch.tensor([local[position[a]] for a, _, _ in pairs])
    index2 = torch.tensor([local[position[b]] for _, b, _ in pairs])
    same = torch.tensor([s for _, _, s in pairs])
    return all_images[used], index1, index2, same


def train_lfw(contrastive, iterations, batch_size=128, lr=2e-3, margin=MARGIN, embedding_dim=LFW_EMBEDDING_DIM,
              seed=0, device=None, show_progress=True, images=None, labels=None):
    """Train ``contrastive.FaceEmbeddingNet(embedding_dim)`` with ``contrastive.ContrastiveLoss(margin)``
    on pairs of augmented faces of the peopleDevTrain people (``images``, ``labels``: those faces and
    their person numbers, as ``load_lfw_people_split("peopleDevTrain.txt")`` gives them; loaded when
    not given).

    Returns a dict: ``net``, ``losses`` (one float per iteration), ``seconds``.
    """
    device = device or default_device()
    generator = seed_everything(seed)
    if images is None:
        images, labels, _, _ = load_lfw_people_split("peopleDevTrain.txt")
    net = contrastive.FaceEmbeddingNet(embedding_dim=embedding_dim).to(device)
    criterion = contrastive.ContrastiveLoss(margin=margin)
    start = time.perf_counter()
    losses = train_siamese(SiameseNetwork(net), images, labels, criterion, iterations, batch_size, lr=lr,
                           generator=generator, augment=augment_faces, device=device, desc="Siamese LFW",
                           show_progress=show_progress)
    return dict(net=net, losses=losses, seconds=time.perf_counter() - start)


def embed_images(contrastive, net, images, batch_size: int = 1000):
    """``embed(net, images)`` (evaluation mode, no gradients): the worker's side of the LFW test,
    which sends faces without names, labels or pairs and computes the verification itself."""
    return embed(net, images, batch_size=batch_size)


def evaluate_lfw(net):
    """Face verification with a trained embedding network: the threshold on the distance of the two
    faces' embeddings (each the mean over the face and its mirror image) is chosen on the official
    pairsDevTrain pairs (training people) and applied to the official pairsDevTest pairs.

    Returns a dict: ``accuracy`` (pairsDevTest, at that threshold), ``roc_auc`` (pairsDevTest),
    ``threshold``, ``train_pairs_accuracy`` (pairsDevTrain, at that threshold), ``best_test_accuracy``
    (the accuracy the best threshold for pairsDevTest would give: an optimistic bound, for reference)
    and the mean distances of matched and mismatched test pairs.
    """
    return verify_lfw(lambda images: embed(net, images, flip_average=True))


def verify_lfw(embed_faces):
    """:func:`evaluate_lfw`'s metrics from ``embed_faces(images) -> (M, d)`` embeddings (each face's
    already averaged with its mirror image's), called once with the pairsDevTrain faces followed by
    the pairsDevTest ones."""
    train_images, t1, t2, train_same = load_lfw_pairs("pairsDevTrain.txt")
    test_images, q1, q2, test_same = load_lfw_pairs("pairsDevTest.txt")
    z = embed_faces(torch.cat([train_images, test_images]))
    z_train, z_test = z[:len(train_images)], z[len(train_images):]
    d_train = pair_distances(z_train, t1, t2)
    d_test = pair_distances(z_test, q1, q2)
    threshold, train_accuracy = best_threshold(d_train, train_same)
    return dict(accuracy=verification_accuracy(d_test, test_same, threshold), roc_auc=roc_auc(d_test, test_same),
                threshold=threshold, train_pairs_accuracy=train_accuracy,
                best_test_accuracy=best_threshold(d_test, test_same)[1],
                mean_matched_distance=d_test[test_same].mean().item(),
                mean_mismatched_distance=d_test[~test_same].mean().item(),
                pairs=len(d_test))


def lfw_verification(contrastive, seed, iterations, batch_size, lr=2e-3, embedding_dim=LFW_EMBEDDING_DIM,
                     time_limit=None):
    """What the extra-credit test checks: ``train_lfw`` under a fixed budget, then
    :func:`evaluate_lfw`'s metrics.

    With a :class:`hw3.remote.RemoteModule` (the graded tests), the worker gets the peopleDevTrain
    faces and person numbers (no names) and trains the student's FaceEmbeddingNet (their design);
    then it gets the pairsDevTrain and pairsDevTest faces and their mirror images, without names,
    labels or pair structure, in an order drawn from the operating system's randomness (nothing it
    can reproduce or link to the pairs files), and returns their embeddings. This side undoes the
    order, averages each face with its mirror image and computes the threshold and every metric.
    ``time_limit``: seconds the training request may take (default: the proxy's).
    """
    if not is_remote(contrastive):
        return evaluate_lfw(train_lfw(contrastive, iterations, batch_size, lr, embedding_dim=embedding_dim,
                                      seed=seed, show_progress=False)["net"])
    import contextlib
    images, labels, _, _ = load_lfw_people_split("peopleDevTrain.txt")
    limit = contrastive.time_limit(time_limit) if time_limit else contextlib.nullcontext()
    with limit:
        result = contrastive.provided("hw3.contrastive_experiment.train_lfw", iterations, batch_size, lr,
                                      embedding_dim=embedding_dim, seed=seed, show_progress=False,
                                      images=images, labels=labels)
    net = result.get("net") if type(result) is dict else None
    from hw3.remote import RemoteHandle
    if not isinstance(net, RemoteHandle):
        raise BadResult(f"training FaceEmbeddingNet should give a network; the worker returned "
                        f"{type(net).__name__}")
    return verify_lfw(lambda faces: shuffled_embeddings(contrastive, net, faces, embedding_dim))


def shuffled_embeddings(contrastive, net, faces, embedding_dim):
    """The worker's embeddings of ``faces`` (M,1,S,S) averaged with those of their mirror images:
    all 2M sent in one secret random order, which is undone here."""
    import secrets
    both = torch.cat([faces, faces.flip(3)])
    order = torch.randperm(len(both), generator=torch.Generator().manual_seed(secrets.randbits(63)))
    z = contrastive.provided("hw3.contrastive_experiment.embed_images", net, both[order].contiguous())
    expected = (len(both), embedding_dim)
    if type(z) is not torch.Tensor or tuple(z.shape) != expected or not z.is_floating_point():
        raise BadResult(f"FaceEmbeddingNet(embedding_dim={embedding_dim}) should embed {len(both)} faces as a float "
                        f"tensor {expected}; got {describe_value(z)}")
    unshuffled = torch.empty_like(z, dtype=torch.float32)
    unshuffled[order] = z.float()
    return (unshuffled[:len(faces)] + unshuffled[len(faces):]) / 2


def describe_value(value) -> str:
    if type(value) is torch.Tensor:
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


# --- deliverables -------------------------------------------------------------------------------------

def pair_outputs(net, images, labels, names, generator, stem, title, flip_average=False) -> dict:
    """The 20-pair deliverable: ``stem``.png (2x10 figure) and ``stem``.csv / .md (the distances), as
    outputs NAME and NAME_table (NAME: ``stem``'s name)."""
    index1, index2, label, same_picture = display_pairs(labels, generator, 20)
    pictures = torch.cat([index1, index2]).unique()
    z = embed(net, images[pictures], flip_average=flip_average)
    local = torch.full((len(images),), -1, dtype=torch.long)
    local[pictures] = torch.arange(len(pictures))
    distances = pair_distances(z, local[index1], local[index2])
    figure = plot_pairs(images, index1, index2, distances, label, same_picture, f"{stem}.png", title)
    name = (lambda c: names[c]) if names is not None else str
    rows = [[i + 1, "similar" if label[i] == 0 else "dissimilar", int(label[i]), bool(same_picture[i]),
             name(int(labels[index1[i]])), name(int(labels[index2[i]])), int(index1[i]), int(index2[i]),
             f"{float(distances[i]):.6g}"] for i in range(len(index1))]
    _, table = write_table(["pair", "kind", "label", "same_picture", "class1", "class2", "index1", "index2",
                            "distance"], rows, stem)
    return {stem.name: (figure, f"{title} (the first pair shows one picture twice)"),
            f"{stem.name}_table": (table, f"{title}: the distances (same_picture: one picture twice)")}


def most_pictured(labels, count, per_class=LFW_PICTURES_SHOWN):
    """The first ``per_class`` images of each of the ``count`` classes with the most images: a bool
    mask (M,). (Capped, so that George W. Bush's 530 pictures do not hide everybody else.)"""
    top = torch.bincount(labels).topk(count).indices
    mask = torch.isin(labels, top)
    rank = torch.zeros_like(labels)
    for c in top.tolist():
        where = torch.nonzero(labels == c).squeeze(1)
        rank[where] = torch.arange(len(where))
    return mask & (rank < per_class)


def run_mnist(contrastive, args, budget, out):
    train_images, train_labels = load_mnist(train=True)
    test_images, test_labels = load_mnist(train=False)
    result = train_mnist(contrastive, budget["iterations"], budget["batch_size"], budget["lr"], args.margin,
                         args.embedding_dim, args.seed, train_images=train_images, train_labels=train_labels)
    net, losses = result["net"], result["losses"]
    shown = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(args.seed))[:EMBEDDING_POINTS]
    z_train, z_test = embed(net, train_images[shown]), embed(net, test_images)
    metrics = evaluate_embedding(z_train, train_labels[shown], z_test, test_labels, seed=args.seed)
    metrics.update(iterations=budget["iterations"], batch_size=budget["batch_size"], lr=budget["lr"],
                   margin=args.margin, embedding_dim=args.embedding_dim, seconds=round(result["seconds"], 1),
                   final_loss=sum(losses[-50:]) / len(losses[-50:]))

    outputs = {
        "mnist_loss_curve": (save_curves(learning_curves(losses), out / "mnist_loss_curve.png",
                                         title="Siamese MNIST: contrastive loss on training pairs"),
                             "Contrastive loss on training pairs per iteration"),
        "mnist_losses": (write_losses(losses, out / "mnist_losses.csv"), "MNIST: contrastive loss per iteration"),
        "mnist_embedding_train": (plot_embedding(z_train, train_labels[shown], out / "mnist_embedding_train.png",
                                                 f"MNIST training set, {len(shown)} digits"),
                                  f"Embeddings of {len(shown)} training digits, coloured by digit"),
        "mnist_embedding_test": (plot_embedding(z_test, test_labels, out / "mnist_embedding_test.png",
                                                f"MNIST test set, {len(test_images)} digits"),
                                 f"Embeddings of the {len(test_images)} test digits, coloured by digit"),
    }
    generator = torch.Generator().manual_seed(args.seed + 1)
    for split, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        outputs.update(pair_outputs(net, images, labels, None, generator, out / f"mnist_pairs_{split}",
                                    f"MNIST {split} set: embedding distance of 20 pairs"))
    print(f"MNIST: {budget['iterations']} iterations in {result['seconds']:.0f} s, test kNN accuracy "
          f"{metrics['knn_accuracy']:.2%}, mean distance similar {metrics['mean_similar_distance']:.3f} / "
          f"dissimilar {metrics['mean_dissimilar_distance']:.3f}")
    return outputs, metrics


def run_lfw(contrastive, args, budget, out):
    result = train_lfw(contrastive, budget["iterations"], budget["batch_size"], budget["lr"], args.margin,
                       args.lfw_embedding_dim, args.seed)
    net, losses = result["net"], result["losses"]
    metrics = evaluate_lfw(net)
    metrics.update(iterations=budget["iterations"], batch_size=budget["batch_size"], lr=budget["lr"],
                   margin=args.margin, embedding_dim=args.lfw_embedding_dim, seconds=round(result["seconds"], 1),
                   final_loss=sum(losses[-50:]) / len(losses[-50:]), image_size=LFW_SIZE, crop=LFW_CROP)

    outputs = {
        "lfw_loss_curve": (save_curves(learning_curves(losses), out / "lfw_loss_curve.png",
                                       title="Siamese LFW: contrastive loss on training pairs"),
                           "Contrastive loss on training pairs of faces per iteration"),
        "lfw_losses": (write_losses(losses, out / "lfw_losses.csv"), "LFW: contrastive loss per iteration"),
    }
    generator = torch.Generator().manual_seed(args.seed + 1)
    for split, people in (("train", "peopleDevTrain.txt"), ("test", "peopleDevTest.txt")):
        images, labels, names, _ = load_lfw_people_split(people)
        mask = most_pictured(labels, LFW_PEOPLE_SHOWN)
        z = embed(net, images[mask], flip_average=True)
        title = f"LFW {people[:-4]}: {LFW_PEOPLE_SHOWN} people with most pictures, {LFW_PICTURES_SHOWN} each at most"
        outputs[f"lfw_embedding_{split}"] = (
            plot_embedding(z, labels[mask], out / f"lfw_embedding_{split}.png", title, names=names),
            f"Embeddings of the {LFW_PEOPLE_SHOWN} people of {people[:-4]} with the most pictures "
            f"(first two principal components)")
        outputs.update(pair_outputs(net, images, labels, names, generator, out / f"lfw_pairs_{split}",
                                    f"LFW {people[:-4]}: embedding distance of 20 pairs", flip_average=True))
    print(f"LFW: {budget['iterations']} iterations in {result['seconds']:.0f} s, pairsDevTest verification "
          f"accuracy {metrics['accuracy']:.2%} (threshold {metrics['threshold']:.3f} from pairsDevTrain), "
          f"ROC AUC {metrics['roc_auc']:.3f}")
    return outputs, metrics


def learning_curves(losses, window=50):
    """{"per iteration": losses, "moving average": ...} for save_curves."""
    window = max(1, min(window, len(losses) // 10 or 1))
    t = torch.tensor(losses)
    smooth = torch.nn.functional.avg_pool1d(t[None, None], window, stride=1).flatten()
    return {"per iteration": losses, f"mean of {window}": [float("nan")] * (window - 1) + smooth.tolist()}


def write_losses(losses, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write("iteration,loss\n")
        f.writelines(f"{i},{loss:.6f}\n" for i, loss in enumerate(losses, start=1))
    return path


# --- command line ---------------------------------------------------------------------------------------

def configure(parser):
    add_common_arguments(parser, "contrastive",
                         f"a few-minute CPU budget: MNIST {MNIST_QUICK['iterations']} and LFW "
                         f"{LFW_QUICK['iterations']} iterations (unless the flags below say otherwise)")
    add_budget_arguments(parser, MNIST_FULL, MNIST_QUICK, {"iterations": (int, "MNIST training iterations"),
                                                           "batch_size": (int, "MNIST pairs per iteration"),
                                                           "lr": (float, "MNIST Adam learning rate")})
    parser.add_argument("--embedding-dim", type=int, default=2,
                        help="MNIST embedding dimension (default 2: plotted as is; more: principal components)")
    parser.add_argument("--margin", type=float, default=MARGIN, help=f"contrastive loss margin (default: {MARGIN})")
    parser.add_argument("--lfw", choices=("auto", "yes", "no"), default="auto",
                        help="extra credit on LFW faces: auto (default) runs it when contrastive.py's "
                             "FaceEmbeddingNet is implemented")
    add_budget_arguments(parser, LFW_FULL, LFW_QUICK, {"iterations": (int, "LFW training iterations"),
                                                       "batch_size": (int, "LFW pairs per iteration"),
                                                       "lr": (float, "LFW Adam learning rate")}, prefix="lfw_")
    parser.add_argument("--lfw-embedding-dim", type=int, default=LFW_EMBEDDING_DIM,
                        help=f"FaceEmbeddingNet's embedding dimension (default: {LFW_EMBEDDING_DIM})")


def face_net_implemented(contrastive) -> bool:
    """Whether contrastive.FaceEmbeddingNet exists and can be built."""
    if not hasattr(contrastive, "FaceEmbeddingNet"):
        return False
    try:
        contrastive.FaceEmbeddingNet(embedding_dim=LFW_EMBEDDING_DIM)
    except NotImplementedError:
        return False
    return True


def run(args):
    mnist_budget = chosen_budget(args, MNIST_FULL, MNIST_QUICK)
    lfw_budget = chosen_budget(args, LFW_FULL, LFW_QUICK, prefix="lfw_")
    for budget in (mnist_budget, lfw_budget):
        if budget["iterations"] < 1 or budget["batch_size"] < 2 or budget["lr"] <= 0:
            return fail("iterations must be at least 1, batch sizes at least 2 (one similar and one dissimilar "
                        "pair) and learning rates positive", 2)
    if args.margin <= 0 or args.embedding_dim < 1 or args.lfw_embedding_dim < 1:
        return fail("--margin must be positive and embedding dimensions at least 1", 2)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return fail(f"cannot create the output folder {out}: {error.strerror or error}")
    outputs, metrics, notes = {}, {}, []
    try:
        contrastive = impl.load("contrastive", args.impl)
        for name, section, needed in (("ContrastiveLoss", "2.1", True),
                                      ("FaceEmbeddingNet", "2.4, extra credit", args.lfw == "yes")):
            if needed and not hasattr(contrastive, name):
                return fail(f"{impl.impl_dir(args.impl) / 'contrastive.py'} defines no {name} "
                            f"(handout section {section})")
        mnist_outputs, metrics["mnist"] = run_mnist(contrastive, args, mnist_budget, out)
        outputs.update(mnist_outputs)
        lfw = args.lfw == "yes" or (args.lfw == "auto" and face_net_implemented(contrastive))
        if lfw:
            lfw_outputs, metrics["lfw"] = run_lfw(contrastive, args, lfw_budget, out)
            outputs.update(lfw_outputs)
        else:
            notes.append("LFW extra credit skipped" + (" (--lfw no)" if args.lfw == "no" else
                                                       ": FaceEmbeddingNet is not implemented in contrastive.py"))
            print(f"note: {notes[-1]}", file=sys.stderr)
    except (NotImplementedError, impl.ImplementationError, DatasetError) as error:
        return fail(str(error))  # which function to implement / what is missing

    settings = run_settings(args, mnist=mnist_budget, lfw=lfw_budget if "lfw" in metrics else None,
                            margin=args.margin)
    write_summary(out, "contrastive", settings, metrics, outputs, notes)
    print(f"wrote {len(outputs)} figures and tables and summary.json to {out}")
    return 0
