"""Realistic wrong (and correct alternative) implementations of contrastive.py (ContrastiveLoss, and
FaceEmbeddingNet for the extra credit).

Each wrong variant must lose points in tests/test_contrastive.py + tests/hidden/test_contrastive_hidden.py;
each correct one must keep full marks. Check one with
``python -m autograder.validate.try_variant contrastive NAME`` (add ``-m "not training"`` for the
fast tests only).
"""
from autograder.validate.variants import Variant

LABEL = "        label = label.reshape(-1).to(output1.dtype)  # (N,): (N, 1) must not broadcast to (N, N)\n"
DISTANCE = "torch.linalg.vector_norm(output1 - output2, dim=1)"
SIMILAR = "similar = (1 - label) * 0.5 * distance.pow(2)"
DISSIMILAR = "dissimilar = label * 0.5 * F.relu(self.margin - distance).pow(2)"
RETURN = "return (similar + dissimilar).mean()"

VARIANTS = [
    # --- wrong ------------------------------------------------------------------------------
    Variant("contrastive", "swapped-labels",
            "label 1 taken as similar and 0 as dissimilar (the convention of some blog posts)",
            replace=((SIMILAR, "similar = label * 0.5 * distance.pow(2)"),
                     (DISSIMILAR, "dissimilar = (1 - label) * 0.5 * F.relu(self.margin - distance).pow(2)"))),
    Variant("contrastive", "no-half",
            "both 1/2 factors missing",
            replace=((SIMILAR, "similar = (1 - label) * distance.pow(2)"),
                     (DISSIMILAR, "dissimilar = label * F.relu(self.margin - distance).pow(2)"))),
    Variant("contrastive", "half-similar-only",
            "the 1/2 factor only on the similar term",
            replace=((DISSIMILAR, "dissimilar = label * F.relu(self.margin - distance).pow(2)"),)),
    Variant("contrastive", "sum-not-mean",
            "summed over the batch instead of averaged",
            replace=((RETURN, "return (similar + dissimilar).sum()"),)),
    Variant("contrastive", "margin-minus-squared-distance",
            "max(0, margin - D^2) instead of max(0, margin - D)^2",
            replace=((DISSIMILAR, "dissimilar = label * 0.5 * F.relu(self.margin - distance.pow(2))"),)),
    Variant("contrastive", "squared-margin-minus-squared-distance",
            "max(0, margin^2 - D^2): the hinge on squared distances",
            replace=((DISSIMILAR, "dissimilar = label * 0.5 * F.relu(self.margin ** 2 - distance.pow(2))"),)),
    Variant("contrastive", "no-clamp",
            "(margin - D)^2 without max(0, .): dissimilar pairs far apart are pulled back to the margin",
            replace=((DISSIMILAR, "dissimilar = label * 0.5 * (self.margin - distance).pow(2)"),)),
    Variant("contrastive", "dissimilar-not-squared",
            "max(0, margin - D) not squared",
            replace=((DISSIMILAR, "dissimilar = label * 0.5 * F.relu(self.margin - distance)"),)),
    Variant("contrastive", "similar-distance-not-squared",
            "D instead of D^2 for the similar term",
            replace=((SIMILAR, "similar = (1 - label) * 0.5 * distance"),)),
    Variant("contrastive", "squared-distance-as-distance",
            "D^2 (sum of squares, no square root) used as the distance everywhere",
            replace=((DISTANCE, "(output1 - output2).pow(2).sum(dim=1)"),)),
    Variant("contrastive", "margin-ignored",
            "the margin hard-coded to 2.0 instead of self.margin",
            replace=((DISSIMILAR, "dissimilar = label * 0.5 * F.relu(2.0 - distance).pow(2)"),)),
    Variant("contrastive", "label-broadcast",
            "label used as given: a (N, 1) label broadcasts against the (N,) distances into (N, N)",
            replace=((LABEL, "        label = label.to(output1.dtype)\n"),)),
    Variant("contrastive", "sqrt-nan-at-zero",
            "D = sqrt(sum of squares): NaN gradients when the two embeddings are equal",
            replace=((DISTANCE, "torch.sqrt((output1 - output2).pow(2).sum(dim=1))"),)),
    Variant("contrastive", "whole-batch-norm",
            "one norm of the whole (N, d) difference instead of one distance per pair",
            replace=((DISTANCE, "torch.norm(output1 - output2)"),)),
    Variant("contrastive", "detached-distance",
            "the distance detached from the graph (e.g. computed through .detach() or numpy): no gradient",
            replace=((DISTANCE, "torch.linalg.vector_norm(output1 - output2, dim=1).detach()"),)),
    Variant("contrastive", "mean-over-features",
            "squared differences averaged over the embedding dimension instead of summed",
            replace=((SIMILAR, "similar = (1 - label) * 0.5 * (output1 - output2).pow(2).mean(dim=1)"),)),
    Variant("contrastive", "face-net-fixed-dim",
            "FaceEmbeddingNet's last layer hard-coded to 64 outputs, ignoring embedding_dim (extra credit)",
            replace=(("self.head = nn.Linear(512, embedding_dim)", "self.head = nn.Linear(512, 64)"),)),
    Variant("contrastive", "hinge-zeros-on-cpu",
            "max(0, margin - D) as torch.max(torch.zeros(N), margin - D): the zeros are on the CPU (raises on a GPU)",
            replace=((DISSIMILAR, "dissimilar = label * 0.5 * torch.max(torch.zeros(distance.shape, "
                                  "dtype=distance.dtype), self.margin - distance).pow(2)"),)),
    Variant("contrastive", "margin-tensor-on-cpu",
            "the margin as torch.full((N,), margin) made on the CPU (raises on a GPU)",
            replace=((DISSIMILAR, "dissimilar = label * 0.5 * F.relu(torch.full(distance.shape, self.margin, "
                                  "dtype=distance.dtype) - distance).pow(2)"),)),
    # --- correct alternatives ---------------------------------------------------------------
    Variant("contrastive", "pairwise-distance",
            "D from torch.nn.functional.pairwise_distance (which adds eps = 1e-6 to the difference)",
            replace=((DISTANCE, "F.pairwise_distance(output1, output2)"),), correct=True),
    Variant("contrastive", "clamp-and-sum-of-squares",
            "torch.clamp(min=0) for the hinge, and D^2 as a sum of squares; D = sqrt(D^2 + eps)",
            replace=((DISTANCE, "torch.sqrt((output1 - output2).pow(2).sum(dim=1) + 1e-12)"),
                     (SIMILAR, "similar = (1 - label) * 0.5 * (output1 - output2).pow(2).sum(dim=1)"),
                     (DISSIMILAR, "dissimilar = label * 0.5 * torch.clamp(self.margin - distance, min=0.0) ** 2")),
            correct=True),
    Variant("contrastive", "where-keepdim",
            "distances kept as (N, 1), labels viewed as (N, 1) and torch.where picking each pair's term",
            replace=((LABEL, "        label = label.view(-1, 1)\n"),
                     (DISTANCE, "(output1 - output2).norm(dim=1, keepdim=True)"),
                     (RETURN, "return torch.where(label == 0, 0.5 * distance ** 2, "
                              "0.5 * torch.clamp(self.margin - distance, min=0) ** 2).mean()")),
            correct=True),
    Variant("contrastive", "boolean-masks",
            "the similar and dissimilar pairs picked with boolean masks (data-dependent shapes), the hinge "
            "against torch.zeros_like",
            replace=((SIMILAR + "\n        " + DISSIMILAR + "\n        " + RETURN,
                      "similar = 0.5 * distance[label == 0].pow(2).sum()\n"
                      "        far = distance[label == 1]\n"
                      "        dissimilar = 0.5 * torch.max(torch.zeros_like(far), self.margin - far).pow(2).sum()\n"
                      "        return (similar + dissimilar) / distance.shape[0]"),), correct=True),
]
