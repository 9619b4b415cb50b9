"""Problem 2's judge: the MNIST embedding network (hw3/siamese.py's MnistEmbeddingNet, which the
provided loop trains with the student's loss) holding the weights the worker trained, so that the
convergence tests (2.2.x) compute every metric from embeddings made here."""
import torch

from autograder.judge.weights import load_in_order


def rebuild_mnist_embedding(trained: list, embedding_dim: int = 2) -> torch.nn.Module:
    """The judge's MnistEmbeddingNet with the trained weights ((name, tensor) pairs in their order),
    in evaluation mode. Raises WeightMismatch naming the layer when they do not fit."""
    from hw3.siamese import MnistEmbeddingNet  # the judge's copy of the provided package: not the worker's
    return load_in_order(MnistEmbeddingNet(embedding_dim), trained, "MnistEmbeddingNet")
