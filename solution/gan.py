"""Problem 4: a deep convolutional GAN (DCGAN) that generates MNIST digits.

You implement seven pieces, in the order of the handout (sections 4.1-4.7):

    sample_noise        uniform noise on [-1, 1), the generator's input
    build_discriminator a convolutional classifier: image -> one logit "real vs fake"
    build_generator     a transposed-convolution network: noise -> image in [-1, 1]
    get_optimizer       Adam with the DCGAN hyperparameters
    bce_loss            a numerically stable binary cross-entropy on logits
    discriminator_loss  the discriminator's loss on a batch of real and a batch of fake logits
    generator_loss      the generator's (non-saturating) loss

Images travel through the networks flattened: a batch of MNIST digits is a tensor (N, 784) with
values in [-1, 1] (the provided training loop rescales the [0, 1] pixels with 2x - 1), which is
also exactly what the generator outputs.

The provided training loop (``python -m hw3 gan``, in hw3/gan_experiment.py) puts these pieces
together; the tests (``pytest tests/ -k gan``) check each piece on its own, then train.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F  # noqa: F401  (you may find it useful)

NOISE_DIM = 96


def sample_noise(batch_size, dim, seed=None):
    """
    Generate a PyTorch Tensor of uniform random noise.

    Input:
    - batch_size: Integer giving the batch size of noise to generate.
    - dim: Integer giving the dimension of noise to generate.
    - seed: Optional integer. If it is not None, first call torch.manual_seed(seed), so that two
      calls with the same seed return the same noise.

    Output:
    - A PyTorch Tensor of shape (batch_size, dim) containing uniform random noise in the range
      [-1, 1) (on the CPU, dtype torch.float32).
    """
    # BEGIN SOLUTION (handout 4.1)
    if seed is not None:
        torch.manual_seed(seed)
    return torch.rand(batch_size, dim) * 2 - 1
    # END SOLUTION


def build_discriminator():
    """
    Build and return a PyTorch nn.Module implementing the DCGAN discriminator.

    Input of the returned module:
    - x: Tensor of shape (N, 784): flattened 28x28 images with values in [-1, 1].

    Output of the returned module:
    - Tensor of shape (N, 1): one logit per image, the (unnormalized) score that the image is
      real. Do NOT end with a sigmoid: the losses below take logits.

    Architecture (use nn.Sequential):
    * Unflatten to (N, 1, 28, 28)
    * Conv2D: 32 filters, 5x5, stride 1                -> (N, 32, 24, 24)
    * Leaky ReLU(alpha=0.01)
    * Max Pool 2x2, stride 2                           -> (N, 32, 12, 12)
    * Conv2D: 64 filters, 5x5, stride 1                -> (N, 64, 8, 8)
    * Leaky ReLU(alpha=0.01)
    * Max Pool 2x2, stride 2                           -> (N, 64, 4, 4)
    * Flatten                                          -> (N, 1024)
    * Fully connected with output size 1024
    * Leaky ReLU(alpha=0.01)
    * Fully connected with output size 1               -> (N, 1)

    It has 1,102,721 parameters.
    """
    # BEGIN SOLUTION (handout 4.2)
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, kernel_size=5),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d(2, stride=2),
        nn.Conv2d(32, 64, kernel_size=5),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d(2, stride=2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 64, 1024),
        nn.LeakyReLU(0.01),
        nn.Linear(1024, 1),
    )
    # END SOLUTION


def build_generator(noise_dim=NOISE_DIM):
    """
    Build and return a PyTorch nn.Module implementing the DCGAN generator.

    Input of the returned module:
    - z: Tensor of shape (N, noise_dim) of noise (see sample_noise).

    Output of the returned module:
    - Tensor of shape (N, 784): flattened 28x28 images with values in [-1, 1].

    Architecture (use nn.Sequential):
    * Fully connected with output size 1024            -> (N, 1024)
    * ReLU
    * BatchNorm1d
    * Fully connected with output size 7 x 7 x 128     -> (N, 6272)
    * ReLU
    * BatchNorm1d
    * Unflatten to (N, 128, 7, 7)
    * ConvTranspose2d: 64 filters of 4x4, stride 2, 'same' padding (padding=1)   -> (N, 64, 14, 14)
    * ReLU
    * BatchNorm2d
    * ConvTranspose2d: 1 filter of 4x4, stride 2, 'same' padding (padding=1)     -> (N, 1, 28, 28)
    * TanH
    * Flatten                                          -> (N, 784)

    It has 6,675,009 parameters for noise_dim = 96.
    """
    # BEGIN SOLUTION (handout 4.3)
    return nn.Sequential(
        nn.Linear(noise_dim, 1024),
        nn.ReLU(),
        nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128),
        nn.ReLU(),
        nn.BatchNorm1d(7 * 7 * 128),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, kernel_size=4, stride=2, padding=1),
        nn.ReLU(),
        nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 1, kernel_size=4, stride=2, padding=1),
        nn.Tanh(),
        nn.Flatten(),
    )
    # END SOLUTION


def get_optimizer(model):
    """
    Construct and return an Adam optimizer for the model with learning rate 1e-3 and
    beta1 = 0.5, beta2 = 0.999.

    Input:
    - model: A PyTorch nn.Module whose parameters we want to optimize.

    Output:
    - An Adam optimizer (torch.optim.Adam) over model.parameters().
    """
    # BEGIN SOLUTION (handout 4.4)
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    # END SOLUTION


def bce_loss(input, target):
    """
    Numerically stable binary cross-entropy loss, averaged over all elements.

    For a logit s and a target z in [0, 1], with sigma the sigmoid,

        bce(s, z) = -[ z * log(sigma(s)) + (1 - z) * log(1 - sigma(s)) ],

    which must be computed without ever evaluating log(0): the result has to stay finite for
    logits as large as +-1e4 (computing log(sigmoid(s)) directly does not). Do NOT call
    torch.nn.functional.binary_cross_entropy on sigmoid(input) for the same reason.

    Inputs:
    - input: PyTorch Tensor of shape (N, ) (or any shape) giving logits.
    - target: PyTorch Tensor of the same shape as input, containing 0 and 1 (any value in
      [0, 1] is allowed).

    Returns:
    - A PyTorch Tensor of shape () containing the mean BCE loss over all elements.
    """
    # BEGIN SOLUTION (handout 4.5)
    neg_abs = -input.abs()
    loss = input.clamp(min=0) - input * target + (1 + neg_abs.exp()).log()
    return loss.mean()
    # END SOLUTION


def discriminator_loss(logits_real, logits_fake):
    """
    Compute the discriminator loss: real images should be classified as real (label 1) and
    generated images as fake (label 0),

        loss = bce_loss(logits_real, 1) + bce_loss(logits_fake, 0).

    Inputs:
    - logits_real: PyTorch Tensor of shape (N, 1) (or (N,)) giving the discriminator's scores
      for real data.
    - logits_fake: PyTorch Tensor of shape (N, 1) (or (N,)) giving the scores for fake data.

    Returns:
    - loss: PyTorch Tensor of shape () containing the (scalar) discriminator loss.
    """
    # BEGIN SOLUTION (handout 4.6)
    real = bce_loss(logits_real, torch.ones_like(logits_real))
    fake = bce_loss(logits_fake, torch.zeros_like(logits_fake))
    return real + fake
    # END SOLUTION


def generator_loss(logits_fake):
    """
    Compute the generator loss: the non-saturating loss, which asks the discriminator to label
    generated images as real,

        loss = bce_loss(logits_fake, 1)     (that is, mean of -log sigma(logits_fake)).

    Input:
    - logits_fake: PyTorch Tensor of shape (N, 1) (or (N,)) giving the discriminator's scores
      for fake data.

    Returns:
    - loss: PyTorch Tensor of shape () containing the (scalar) generator loss.
    """
    # BEGIN SOLUTION (handout 4.7)
    return bce_loss(logits_fake, torch.ones_like(logits_fake))
    # END SOLUTION
