"""Problem 2: the contrastive loss of a Siamese network (and, for extra credit, a face embedding network).

A Siamese network maps each of two images through the *same* embedding network and compares the
two embeddings by their Euclidean distance. The contrastive loss of Hadsell, Chopra & LeCun
("Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006) pulls the embeddings of a
similar pair together and pushes those of a dissimilar pair apart until they are at least
``margin`` away from each other.

Convention (the paper's): ``label`` is 0 for a similar pair (same digit, same person) and 1 for a
dissimilar pair.

You implement:
    ContrastiveLoss.forward       handout section 2.1
    FaceEmbeddingNet              handout section 2.4 (extra credit)

The Siamese network for MNIST, the pair datasets and the training loops are provided in
hw3/siamese.py and hw3/contrastive_experiment.py (``python -m hw3 contrastive``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ContrastiveLoss(nn.Module):
    """The contrastive loss of a batch of N pairs of embeddings.

    With D_i = ||output1_i - output2_i||_2 the Euclidean distance between the two embeddings of
    pair i and Y_i its label (0 similar, 1 dissimilar):

        loss = 1/N sum_i [ (1 - Y_i) * 1/2 * D_i^2  +  Y_i * 1/2 * max(0, margin - D_i)^2 ]

    Similar pairs are pulled together (their term is 0 only when D_i = 0); dissimilar pairs are
    pushed apart until D_i >= margin, beyond which they cost nothing.
    """

    def __init__(self, margin: float = 2.0):
        """The loss with the given margin.

        Inputs:
        - margin: float > 0, the distance beyond which a dissimilar pair costs nothing.
        """
        super().__init__()
        self.margin = margin

    def forward(self, output1: torch.Tensor, output2: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """The contrastive loss of N pairs of embeddings, averaged over the pairs.

        Inputs:
        - output1: float tensor (N, d), embeddings of the first image of each pair.
        - output2: float tensor (N, d), embeddings of the second image of each pair.
        - label: tensor (N,) or (N, 1), integer or float: 0 for a similar pair, 1 for a dissimilar one.

        Returns:
        - loss: scalar tensor (shape ()), the loss above averaged over the N pairs, differentiable
          with respect to output1 and output2. Its gradient must be finite even when
          output1_i == output2_i (D_i = 0): pair datasets contain pairs of the very same picture.
        """
        # BEGIN SOLUTION (handout 2.1)
        label = label.reshape(-1).to(output1.dtype)  # (N,): (N, 1) must not broadcast to (N, N)
        # vector_norm's gradient at D = 0 is 0, where sqrt(sum of squares) would give NaN.
        distance = torch.linalg.vector_norm(output1 - output2, dim=1)  # (N,)
        similar = (1 - label) * 0.5 * distance.pow(2)
        dissimilar = label * 0.5 * F.relu(self.margin - distance).pow(2)
        return (similar + dissimilar).mean()
        # END SOLUTION


class FaceEmbeddingNet(nn.Module):
    """Extra credit: an embedding network for faces, trained from scratch with ContrastiveLoss on LFW.

    It maps grayscale faces of shape (N, 1, 32, 32), values in [0, 1] (the provided loader crops
    the central 120x120 pixels of each 250x250 deep-funneled LFW image and resizes them to 32x32),
    to embeddings of shape (N, embedding_dim), compared by their Euclidean distance.

    The reference architecture (about 130,000 parameters for embedding_dim=64): four blocks
    conv 3x3 (padding 1, no bias) · BatchNorm2d · ReLU · max-pool 2x2, with 16, 32, 64 and 128
    channels (32x32 -> 16 -> 8 -> 4 -> 2), then Flatten (512) · Linear(512 -> embedding_dim).
    You may design your own, as long as the interface above holds and it trains on a CPU within
    the budget of the extra-credit test (handout section 2.4).
    """

    def __init__(self, embedding_dim: int = 64):
        """Create the layers of the network.

        Inputs:
        - embedding_dim: int, the dimension d of the embeddings.
        """
        super().__init__()
        # BEGIN SOLUTION (handout 2.4)
        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 64), *block(64, 128),
                                      nn.Flatten())  # (N, 128 * 2 * 2)
        self.head = nn.Linear(512, embedding_dim)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embeddings of a batch of faces.

        Inputs:
        - x: float tensor (N, 1, 32, 32), faces in [0, 1].

        Returns:
        - embeddings: float tensor (N, embedding_dim).
        """
        # BEGIN SOLUTION (handout 2.4)
        return self.head(self.features(x))
        # END SOLUTION
