"""Provided code for Problem 2: a Siamese network, balanced pair sampling, its training loop, metrics.

A Siamese network runs the two images of a pair through one shared embedding network; the
contrastive loss (yours, contrastive.py) compares the two embeddings by their Euclidean distance.

    embedding = MnistEmbeddingNet()                     # (N,1,28,28) -> (N,2)
    model = SiameseNetwork(embedding)                   # (x1, x2) -> (e1, e2)
    losses = train_siamese(model, images, labels, ContrastiveLoss(), iterations=1000, batch_size=128)
    z = embed(embedding, test_images)                   # (N,2) -> plot it, kNN-classify it

Pairs are drawn fresh for every batch by ``PairSampler``: exactly half similar (label 0, two
different pictures of one class), half dissimilar (label 1, two classes), from a seeded
torch.Generator, so a run is reproducible.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from hw3.training import progress


# --- networks -----------------------------------------------------------------------------------

class MnistEmbeddingNet(nn.Module):
    """The MNIST embedding network: (N,1,28,28) images in [0,1] -> (N, embedding_dim) embeddings.

    conv 5x5 (1->16) · ReLU · max-pool 2 · conv 5x5 (16->32) · ReLU · max-pool 2 · flatten (512) ·
    Linear(512->128) · ReLU · Linear(128->embedding_dim). The default 2-D embedding is plotted as is.
    About 1.1 million multiply-adds per image, so that training runs in minutes on a laptop CPU.
    """

    def __init__(self, embedding_dim: int = 2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),   # (N,16,12,12)
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),  # (N,32,4,4)
            nn.Flatten(),                                      # (N,512)
        )
        self.head = nn.Sequential(nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, embedding_dim))

    def forward(self, x):
        return self.head(self.features(x))


class SiameseNetwork(nn.Module):
    """Two inputs, one shared embedding network: ``forward(x1, x2) -> (embedding(x1), embedding(x2))``.

    Both halves go through the network as one batch, so they share the weights (and the batch-norm
    statistics, for networks that have batch norm).
    """

    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.embedding = embedding

    def forward(self, x1, x2):
        out = self.embedding(torch.cat([x1, x2]))
        return out[:len(x1)], out[len(x1):]


# --- pairs --------------------------------------------------------------------------------------

class PairSampler:
    """Balanced random batches of pairs of images of a labelled dataset.

    ``PairSampler(labels)(num_pairs, generator)`` returns ``(index1, index2, label)``, each
    (num_pairs,): the two images of every pair (int64 indices into the dataset) and its label as
    float32, 0 for similar (two *different* pictures of one class) and 1 for dissimilar (pictures
    of two classes). The first num_pairs // 2 pairs are similar, the others dissimilar.

    The first image of a similar pair is drawn uniformly among the images whose class has at least
    two, its partner uniformly among the other images of its class; the first image of a dissimilar
    pair uniformly among all images, its partner uniformly among the images of the other classes.
    """

    def __init__(self, labels: torch.Tensor):
        """labels: int64 (M,), the class (digit, person) of every image."""
        self.labels = labels.cpu()
        self.order = torch.argsort(self.labels, stable=True)   # image indices grouped by class
        classes, self.counts = torch.unique_consecutive(self.labels[self.order], return_counts=True)
        if len(classes) < 2:
            raise ValueError("pairs need at least two classes")
        self.starts = torch.cumsum(self.counts, 0) - self.counts  # where each class begins in ``order``
        self.group = torch.searchsorted(classes, self.labels)    # each image's class number
        self.rank = torch.empty_like(self.order)
        self.rank[self.order] = torch.arange(len(self.order))    # where each image sits in ``order``
        self.eligible = torch.nonzero(self.counts[self.group] >= 2).squeeze(1)
        if len(self.eligible) == 0:
            raise ValueError("similar pairs need a class with at least two images")

    def __call__(self, num_pairs: int, generator: torch.Generator = None):
        n_similar = num_pairs // 2
        n_dissimilar = num_pairs - n_similar

        # Similar: a random image (of a class with >= 2 images) and another image of its class,
        # found by stepping 1 .. count-1 places further within the class block (never itself).
        anchor = self.eligible[torch.randint(len(self.eligible), (n_similar,), generator=generator)]
        g = self.group[anchor]
        offset = self.rank[anchor] - self.starts[g]          # its position within its class block
        step = 1 + (torch.rand(n_similar, generator=generator) * (self.counts[g] - 1)).long()
        partner = self.order[self.starts[g] + (offset + step) % self.counts[g]]

        # Dissimilar: two random images, the second redrawn until it belongs to another class.
        first = torch.randint(len(self.labels), (n_dissimilar,), generator=generator)
        second = torch.randint(len(self.labels), (n_dissimilar,), generator=generator)
        clash = self.labels[first] == self.labels[second]
        while clash.any():
            second[clash] = torch.randint(len(self.labels), (int(clash.sum()),), generator=generator)
            clash = self.labels[first] == self.labels[second]

        index1 = torch.cat([anchor, first])
        index2 = torch.cat([partner, second])
        label = torch.cat([torch.zeros(n_similar), torch.ones(n_dissimilar)])
        return index1, index2, label


def make_pairs(labels: torch.Tensor, num_pairs: int, generator: torch.Generator = None):
    """One balanced batch of ``num_pairs`` pairs: ``PairSampler(labels)(num_pairs, generator)``."""
    return PairSampler(labels)(num_pairs, generator)


def display_pairs(labels: torch.Tensor, generator: torch.Generator = None, num_pairs: int = 20):
    """The pairs shown in the pair figures: the first half similar, the second half dissimilar.

    The first similar pair is the very same picture twice (its distance must be about 0: a sanity
    check of the embedding); the others are drawn like ``make_pairs``' pairs. Returns
    ``(index1, index2, label, same_picture)``, each (num_pairs,); same_picture is bool.
    """
    index1, index2, label = make_pairs(labels, num_pairs, generator)
    index2[0] = index1[0]
    return index1, index2, label, index1 == index2


# --- training -----------------------------------------------------------------------------------

def augment_faces(x: torch.Tensor, generator: torch.Generator = None, shift: float = 0.06,
                  scale: float = 0.08) -> torch.Tensor:
    """Random horizontal flips, shifts (up to ``shift`` of the width each way) and zooms (by up to
    ``scale``) of a batch (N,C,S,S), each image its own, so the network cannot learn a face by its
    exact pixels."""
    n = len(x)
    u = torch.rand(n, 4, generator=generator).to(x.device) * 2 - 1  # uniform on [-1, 1)
    flip = torch.where(u[:, 0] < 0, -1.0, 1.0)
    zoom = 1 + scale * u[:, 1]
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = flip * zoom
    theta[:, 1, 1] = zoom
    theta[:, 0, 2] = 2 * shift * u[:, 2]   # affine_grid's coordinates span [-1, 1]: width 2
    theta[:, 1, 2] = 2 * shift * u[:, 3]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def train_siamese(model, images, labels, criterion, iterations: int, batch_size: int, lr: float = 1e-3,
                  generator: torch.Generator = None, augment=None, device=None, desc: str = "training",
                  show_progress: bool = True):
    """Train a Siamese network with Adam on fresh balanced batches of pairs.

    Inputs:
    - model: SiameseNetwork (or any module mapping (x1, x2) to their two embeddings).
    - images: (M,C,H,W) float in [0,1] (or uint8, scaled by 1/255), kept on the CPU.
    - labels: int64 (M,), the class of every image.
    - criterion: the contrastive loss, called as ``criterion(out1, out2, label)`` -> scalar.
    - iterations, batch_size: the budget, in Adam steps and pairs per step.
    - lr: Adam's learning rate, decayed to 0 along a cosine over the iterations.
    - augment: optional function ``(x, generator) -> x`` applied to both images of each pair.

    Returns the list of the ``iterations`` training losses (floats).
    """
    device = device or next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations)
    model.train()
    losses = []
    sampler = PairSampler(labels)
    bar = progress(range(iterations), desc=desc, unit="it", disable=None if show_progress else True)
    for step in bar:
        index1, index2, label = sampler(batch_size, generator)
        x1, x2 = as_float(images[index1]).to(device), as_float(images[index2]).to(device)
        if augment is not None:
            x1, x2 = augment(x1, generator), augment(x2, generator)
        out1, out2 = model(x1, x2)
        loss = criterion(out1, out2, label.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return losses


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0,1]; float images unchanged."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images


@torch.no_grad()
def embed(net, images: torch.Tensor, batch_size: int = 1000, flip_average: bool = False) -> torch.Tensor:
    """Embeddings (M, d) on the CPU of images (M,C,H,W) by ``net`` in evaluation mode (batch norm
    uses its running statistics); with ``flip_average`` the mean of the embeddings of each image and
    its mirror image. The network is put back in training mode afterwards."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        out = []
        for start in range(0, len(images), batch_size):
            x = as_float(images[start:start + batch_size]).to(device)
            z = net(x)
            if flip_average:
                z = (z + net(x.flip(3))) / 2
            out.append(z.float().cpu())
    finally:
        net.train(was_training)
    return torch.cat(out)


# --- metrics ------------------------------------------------------------------------------------

def pair_distances(z: torch.Tensor, index1: torch.Tensor, index2: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (N,) between the embeddings z (M,d) of the pairs (index1[i], index2[i])."""
    return torch.linalg.vector_norm(z[index1] - z[index2], dim=1)


def knn_accuracy(reference, reference_labels, query, query_labels, k: int = 5, chunk: int = 2000) -> float:
    """Accuracy of the k-nearest-neighbour classifier (majority vote, Euclidean distance) that labels
    each query embedding (Q,d) by its k nearest reference embeddings (R,d)."""
    correct = 0
    for start in range(0, len(query), chunk):
        distances = torch.cdist(query[start:start + chunk], reference)
        nearest = distances.topk(k, dim=1, largest=False).indices       # (q, k)
        votes = reference_labels[nearest].mode(dim=1).values           # ties: the smallest label
        correct += (votes == query_labels[start:start + chunk]).sum().item()
    return correct / len(query)


def roc_auc(distances: torch.Tensor, same: torch.Tensor) -> float:
    """Area under the ROC curve of "same class if the distance is small": the probability that a
    random similar pair is closer than a random dissimilar pair (ties count one half)."""
    same = same.bool()
    positive, negative = distances[same].double(), torch.sort(distances[~same].double()).values
    if len(positive) == 0 or len(negative) == 0:
        raise ValueError("roc_auc needs both similar and dissimilar pairs")
    above = len(negative) - torch.searchsorted(negative, positive, right=True)
    ties = torch.searchsorted(negative, positive, right=True) - torch.searchsorted(negative, positive)
    return ((above + 0.5 * ties).sum() / (len(positive) * len(negative))).item()


def best_threshold(distances: torch.Tensor, same: torch.Tensor):
    """The threshold t of the rule "same class if distance <= t" with the best accuracy on these
    pairs; returns ``(t, accuracy)``. t lies halfway between two consecutive distances."""
    same = same.bool()
    d, order = torch.sort(distances.double())
    s = same[order].double()
    # Calling the first k pairs (k = 0..N) "same": correct = similar among them + dissimilar after.
    similar_before = torch.cat([torch.zeros(1, dtype=torch.double), torch.cumsum(s, 0)])
    dissimilar_after = (1 - s).sum() - torch.cat([torch.zeros(1, dtype=torch.double), torch.cumsum(1 - s, 0)])
    accuracy = (similar_before + dissimilar_after) / len(d)
    # Only cuts between two different distances are thresholds (ties fall on one side together).
    cut = torch.ones(len(d) + 1, dtype=torch.bool)
    cut[1:-1] = d[1:] > d[:-1]
    k = int(torch.argmax(torch.where(cut, accuracy, torch.tensor(-1.0, dtype=torch.double))))
    lower = d[k - 1] if k > 0 else d[0] - 1
    upper = d[k] if k < len(d) else d[-1] + 1
    return float((lower + upper) / 2), float(accuracy[k])


def verification_accuracy(distances: torch.Tensor, same: torch.Tensor, threshold: float) -> float:
    """Accuracy of the rule "same class if distance <= threshold"."""
    return ((distances <= threshold) == same.bool()).double().mean().item()


# --- figures ------------------------------------------------------------------------------------

def project_2d(z: torch.Tensor) -> torch.Tensor:
    """z (M,d) itself when d <= 2, else its projection on its first two principal components."""
    if z.shape[1] <= 2:
        return z if z.shape[1] == 2 else torch.cat([z, torch.zeros_like(z)], dim=1)
    centred = z - z.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:2].T


def plot_embedding(z: torch.Tensor, labels: torch.Tensor, path, title: str = "", names=None):
    """Scatter plot of embeddings z (M,d) coloured by class (labels (M,) int64); d > 2 is shown
    through its first two principal components. ``names`` optionally maps a class to its name."""
    from hw3.plots import plt, save_figure

    xy = project_2d(z.float()).numpy()
    classes = torch.unique(labels).tolist()
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for i, c in enumerate(classes):
        mask = (labels == c).numpy()
        name = names[c] if names is not None else str(c)
        ax.scatter(xy[mask, 0], xy[mask, 1], s=4 if len(z) > 2000 else 12, alpha=0.6, color=cmap(i % cmap.N),
                   label=name.replace("_", " "))
    ax.legend(markerscale=3 if len(z) > 2000 else 1.5, fontsize=7, loc="best", framealpha=0.8)
    what = "embedding" if z.shape[1] <= 2 else f"{z.shape[1]}-D embedding, first two principal components"
    ax.set(title=f"{title} ({what})" if title else what)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_pairs(images: torch.Tensor, index1, index2, distances, label, same_picture, path, title: str = ""):
    """The pairs as a 2 x (N/2) figure (first half top row, second half bottom row): each cell the two
    images side by side under their embedding distance; pairs of the very same picture in yellow."""
    from hw3.plots import plt, save_figure

    columns = (len(index1) + 1) // 2
    fig, axes = plt.subplots(2, columns, figsize=(columns * 1.3, 3.4), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(len(index1)):
        ax = axes[i // columns, i % columns]
        a, b = as_float(images[index1[i]]), as_float(images[index2[i]])
        gap = torch.ones(a.shape[0], a.shape[1], max(1, a.shape[2] // 14))
        picture = torch.cat([a, gap, b], dim=2).clamp(0, 1).permute(1, 2, 0).squeeze(-1).numpy()
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
        kind = "same" if int(label[i]) == 0 else "diff"
        highlight = bool(same_picture[i])
        ax.set_title(f"{float(distances[i]):.3g}\n{kind}", fontsize=8,
                     backgroundcolor="yellow" if highlight else "none")
        for spine in ax.spines.values():
            spine.set_edgecolor("gold" if highlight else "lightgray")
            spine.set_linewidth(4 if highlight else 0.5)
    fig.suptitle((title + "\n" if title else "") + "top: similar pairs (label 0), bottom: dissimilar (label 1); "
                 "yellow: the very same picture twice", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
