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

This module is the command and its deliverables; the training and the metrics, which the graded
tests run too, are hw3/contrastive_training.py.
"""
import sys
from pathlib import Path

import torch

from hw3 import impl
from hw3.contrastive_training import (LFW_CROP, LFW_EMBEDDING_DIM, LFW_SIZE, MARGIN, evaluate_embedding, evaluate_lfw,
                                      load_lfw_people_split, train_lfw, train_mnist)
from hw3.datasets import DatasetError
from hw3.experiment import add_budget_arguments, add_common_arguments, chosen_budget, fail, run_settings
from hw3.loaders import load_mnist
from hw3.plots import save_curves, write_table
from hw3.summary import Deliverable, write_summary
from hw3.siamese import display_pairs, embed, pair_distances, plot_embedding, plot_pairs

MNIST_FULL = dict(iterations=2000, batch_size=128, lr=3e-3)
MNIST_QUICK = dict(iterations=500, batch_size=64, lr=3e-3)
LFW_FULL = dict(iterations=2000, batch_size=128, lr=2e-3)
LFW_QUICK = dict(iterations=400, batch_size=64, lr=2e-3)
EMBEDDING_POINTS = 10000     # MNIST images shown in an embedding plot (and kNN reference / queries)
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
