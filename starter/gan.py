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
    """Uniform random noise on [-1, 1), the generator's input.

    Inputs:
    - batch_size: integer N, the number of noise vectors.
    - dim: integer, the dimension of each noise vector.
    - seed: optional integer. If it is not None, first call torch.manual_seed(seed), so that two
      calls with the same seed return the same noise (seed=0 is a seed too).

    Returns:
    - noise: float32 tensor of shape (N, dim) on the CPU, uniform on [-1, 1).
    """
    # ================== YOUR CODE HERE (handout section 4.1) =================
    raise NotImplementedError("sample_noise is not implemented yet: see handout section 4.1 (Problem 4, gan.py)")
    # ============================ END OF YOUR CODE ===========================


def build_discriminator():
    """The DCGAN discriminator: a convolutional classifier from an image to one logit "real vs fake".

    Returns:
    - discriminator: an nn.Sequential mapping x, flattened 28x28 images of shape (N, 784) with
      values in [-1, 1], to logits of shape (N, 1), the (unnormalized) scores that the images
      are real. Do NOT end with a sigmoid: the losses below take logits.

    Its layers, in this order:
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
    # ================== YOUR CODE HERE (handout section 4.2) =================
    raise NotImplementedError("build_discriminator is not implemented yet: see handout section 4.2 (Problem 4, gan.py)")
    # ============================ END OF YOUR CODE ===========================


def build_generator(noise_dim=NOISE_DIM):
    """The DCGAN generator: transposed convolutions from noise to an image in [-1, 1].

    Inputs:
    - noise_dim: integer, the dimension of the noise vectors it takes.

    Returns:
    - generator: an nn.Sequential mapping noise z of shape (N, noise_dim) (see sample_noise) to
      flattened 28x28 images of shape (N, 784) with values in [-1, 1].

    Its layers, in this order:
    * Fully connected with output size 1024            -> (N, 1024)
    * ReLU
    * BatchNorm1d
    * Fully connected with output size 7 x 7 x 128     -> (N, 6272)
    * ReLU
    * BatchNorm1d
    * Unflatten to (N, 128, 7, 7)
    * ConvTranspose2d: 64 filters of 4x4, stride 2, padding=1 -> (N, 64, 14, 14)
    * ReLU
    * BatchNorm2d
    * ConvTranspose2d: 1 filter of 4x4, stride 2, padding=1   -> (N, 1, 28, 28)
    * TanH
    * Flatten                                          -> (N, 784)

    It has 6,675,009 parameters for noise_dim = 96. (padding=1 is the number that doubles the side,
    (n - 1) * 2 - 2 * 1 + 4 = 2n; PyTorch's padding='same' is something else and raises here.)
    """
    # ================== YOUR CODE HERE (handout section 4.3) =================
    raise NotImplementedError("build_generator is not implemented yet: see handout section 4.3 (Problem 4, gan.py)")
    # ============================ END OF YOUR CODE ===========================


def get_optimizer(model):
    """Adam with the DCGAN hyperparameters: learning rate 1e-3, beta1 = 0.5, beta2 = 0.999.

    Inputs:
    - model: an nn.Module whose parameters are to be optimized.

    Returns:
    - optimizer: a torch.optim.Adam over model.parameters().
    """
    # ================== YOUR CODE HERE (handout section 4.4) =================
    raise NotImplementedError("get_optimizer is not implemented yet: see handout section 4.4 (Problem 4, gan.py)")
    # ============================ END OF YOUR CODE ===========================


def bce_loss(input, target):
    """Numerically stable binary cross-entropy on logits, averaged over all elements.

    For a logit s and a target z in [0, 1], with sigma the sigmoid,

        bce(s, z) = -[ z * log(sigma(s)) + (1 - z) * log(1 - sigma(s)) ],

    which must be computed without ever evaluating log(0): the result has to stay finite for
    logits as large as +-1e4 (computing log(sigmoid(s)) directly does not). Do NOT call
    torch.nn.functional.binary_cross_entropy on sigmoid(input) for the same reason.

    Inputs:
    - input: float tensor of any shape, e.g. (N, 1) or (N,): logits.
    - target: float tensor of the same shape as input, with values in [0, 1] (usually 0 or 1).

    Returns:
    - loss: tensor of shape (), the mean of bce over all elements.
    """
    # ================== YOUR CODE HERE (handout section 4.5) =================
    raise NotImplementedError("bce_loss is not implemented yet: see handout section 4.5 (Problem 4, gan.py)")
    # ============================ END OF YOUR CODE ===========================


def discriminator_loss(logits_real, logits_fake):
    """The discriminator's loss: real images should be classified as real (target 1) and
    generated images as fake (target 0),

        loss = bce_loss(logits_real, ones) + bce_loss(logits_fake, zeros),

    where ones and zeros are target tensors of the logits' shapes (torch.ones_like, zeros_like).

    Inputs:
    - logits_real: float tensor of shape (N, 1) (or (N,)), the discriminator's logits of real images.
    - logits_fake: float tensor of shape (N, 1) (or (N,)), its logits of generated images.

    Returns:
    - loss: tensor of shape (), the discriminator's loss.
    """
    # ================== YOUR CODE HERE (handout section 4.6) =================
    raise NotImplementedError("discriminator_loss is not implemented yet: see handout section 4.6 (Problem 4, gan.py)")
    # ============================ END OF YOUR CODE ===========================


def generator_loss(logits_fake):
    """The generator's non-saturating loss, which asks the discriminator to label generated
    images as real,

        loss = bce_loss(logits_fake, ones)     (that is, the mean of -log sigma(logits_fake)),

    where ones is a target tensor of the logits' shape (torch.ones_like).

    Inputs:
    - logits_fake: float tensor of shape (N, 1) (or (N,)), the discriminator's logits of
      generated images.

    Returns:
    - loss: tensor of shape (), the generator's loss.
    """
    # ================== YOUR CODE HERE (handout section 4.7) =================
    raise NotImplementedError("generator_loss is not implemented yet: see handout section 4.7 (Problem 4, gan.py)")
    # ============================ END OF YOUR CODE ===========================
