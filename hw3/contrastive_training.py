"""Problem 2's training and measurements: the Siamese networks trained with the student's
ContrastiveLoss (MnistEmbeddingNet on MNIST pairs; for extra credit their FaceEmbeddingNet on LFW
faces), their metrics, and what the graded tests check across the worker boundary
(``mnist_convergence``, ``lfw_verification``: the worker trains, this side measures).

``python -m hw3 contrastive`` (hw3/contrastive_experiment.py) runs the same training and metrics
and draws the deliverables from them.
"""
import time

import torch

from hw3.device import default_device
from hw3.loaders import load_lfw_images, load_mnist, read_lfw_pairs, read_lfw_people
from hw3.siamese import (MnistEmbeddingNet, SiameseNetwork, augment_faces, best_threshold, embed, knn_accuracy,
                         make_pairs, pair_distances, roc_auc, train_siamese, verification_accuracy)
from hw3.training import seed_everything

MARGIN = 2.0                 # ContrastiveLoss' default, for both datasets
LFW_SIZE, LFW_CROP = 32, 120  # faces: the central 120x120 of the 250x250 deep-funneled image, at 32x32
LFW_EMBEDDING_DIM = 64
EVAL_PAIRS = 2000            # MNIST pairs for the distance / verification metrics
KNN_K = 5


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
    the test digits and labels only it holds. ``device``: where to train ("cuda", "cpu"; default:
    a GPU if any).
    """
    train_images, train_labels = train or load_mnist(train=True)
    test_images, test_labels = test or load_mnist(train=False)
    if is_remote(contrastive):
        result = contrastive.provided("hw3.contrastive_training.train_mnist", iterations, batch_size, lr=lr,
                                      seed=seed, device=device and str(device), show_progress=False)
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
                     time_limit=None, device=None):
    """What the extra-credit test checks: ``train_lfw`` under a fixed budget, then
    :func:`evaluate_lfw`'s metrics.

    With a :class:`hw3.remote.RemoteModule` (the graded tests), the worker gets the peopleDevTrain
    faces and person numbers (no names) and trains the student's FaceEmbeddingNet (their design);
    then it gets the pairsDevTrain and pairsDevTest faces and their mirror images, without names,
    labels or pair structure, in an order drawn from the operating system's randomness (nothing it
    can reproduce or link to the pairs files), and returns their embeddings. This side undoes the
    order, averages each face with its mirror image and computes the threshold and every metric.
    ``time_limit``: seconds the training request may take (default: the proxy's). ``device``: where
    to train ("cuda", "cpu"; default: a GPU if any).
    """
    device = device and str(device)
    if not is_remote(contrastive):
        return evaluate_lfw(train_lfw(contrastive, iterations, batch_size, lr, embedding_dim=embedding_dim,
                                      seed=seed, device=device, show_progress=False)["net"])
    import contextlib
    images, labels, _, _ = load_lfw_people_split("peopleDevTrain.txt")
    limit = contrastive.time_limit(time_limit) if time_limit else contextlib.nullcontext()
    with limit:
        result = contrastive.provided("hw3.contrastive_training.train_lfw", iterations, batch_size, lr,
                                      embedding_dim=embedding_dim, seed=seed, device=device,
                                      show_progress=False, images=images, labels=labels)
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
    z = contrastive.provided("hw3.contrastive_training.embed_images", net, both[order].contiguous())
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
