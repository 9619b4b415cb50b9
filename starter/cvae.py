"""Problem 3: a conditional variational autoencoder (CVAE) that draws the MNIST digit you ask for.

A CVAE models p(x | y), the images x of one class y. An encoder q(z | x, y) maps an image and its
label to a diagonal Gaussian over a latent code z; a decoder p(x | z, y) maps a code and a label
back to the 784 pixel probabilities of a Bernoulli image. Training minimizes the negative
evidence lower bound (ELBO) of log p(x | y) that you derive in sections 3.1 and 3.2:

    -ELBO(x, y) = -E_{q(z|x,y)}[log p(x | z, y)] + KL(q(z | x, y) || N(0, I))
                = sum over pixels of BCE(decoded pixel, pixel)  + KL,

estimated with one sample of z drawn by the reparameterization trick. To generate a digit y,
decode a code z ~ N(0, I) together with the label y.

You implement, in the order of the handout (sections 3.3-3.8):

    one_hot          labels -> one-hot vectors, the form in which the networks see the label
    CVAE.__init__    the encoder's and decoder's layers
    CVAE.encode      (x, y) -> (mu, logvar) of q(z | x, y)
    CVAE.reparameterize  a differentiable sample z = mu + sigma * eps
    CVAE.decode      (z, y) -> Bernoulli means of the 784 pixels
    CVAE.forward     (x, y) -> (reconstruction, mu, logvar)
    kl_divergence    KL(N(mu, diag(exp(logvar))) || N(0, I)), in closed form, per sample
    loss_function    the negative ELBO, averaged over the batch

Images enter as tensors (N, 784) or (N, 1, 28, 28) with values in [0, 1]; labels as int64
tensors (N,). The provided training loop (``python -m hw3 cvae``, in hw3/cvae_experiment.py)
puts the pieces together; the tests (``pytest tests/ -k cvae``) check each piece on its own, then
train on MNIST.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F  # noqa: F401  (you may find it useful)


def one_hot(labels, num_classes=10):
    """Encode integer class labels as one-hot vectors.

    Inputs:
    - labels: int64 tensor of shape (N,) with values in {0, ..., num_classes - 1}.
    - num_classes: Integer, the number of classes C.

    Returns:
    - A float32 tensor of shape (N, C) on the same device as labels, whose row i is all zeros
      except for a one in column labels[i].
    """
    # ================== YOUR CODE HERE (handout section 3.3) =================
    raise NotImplementedError("one_hot is not implemented yet: see handout section 3.3 (Problem 3, cvae.py)")
    # ============================ END OF YOUR CODE ===========================


class CVAE(nn.Module):
    """A conditional VAE with fully connected encoder and decoder.

    Architecture (D = input_dim, C = num_classes, H = hidden_dim, J = latent_dim):

    encoder q(z | x, y):  [x, one_hot(y)] (N, D + C) -> Linear(D + C, H) -> ReLU -> h (N, H)
                          mu     = Linear(H, J)(h)   (N, J)
                          logvar = Linear(H, J)(h)   (N, J)   (log of the variances sigma^2)
    decoder p(x | z, y):  [z, one_hot(y)] (N, J + C) -> Linear(J + C, H) -> ReLU
                          -> Linear(H, D) -> Sigmoid -> (N, D) Bernoulli means in (0, 1)

    With the defaults this has 660,824 parameters.
    """

    def __init__(self, input_dim=784, num_classes=10, hidden_dim=400, latent_dim=20):
        """Create the layers of the encoder and the decoder (section 3.4).

        Inputs:
        - input_dim: Integer D, the number of pixels of a flattened image.
        - num_classes: Integer C, the number of class labels.
        - hidden_dim: Integer H, the width of the hidden layer of the encoder and of the decoder.
        - latent_dim: Integer J, the dimension of the latent code z.
        """
        super().__init__()
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        # ================ YOUR CODE HERE (handout section 3.4) ===============
        raise NotImplementedError("CVAE.__init__ is not implemented yet: see handout section 3.4 (Problem 3, cvae.py)")
        # ========================== END OF YOUR CODE =========================

    def encode(self, x, y):
        """The encoder q(z | x, y): the mean and log-variance of a diagonal Gaussian over z.

        Inputs:
        - x: Tensor of shape (N, D), or any shape (N, ...) with D elements per sample (such as
          (N, 1, 28, 28)), values in [0, 1]; flatten it to (N, D) first.
        - y: int64 tensor of shape (N,), the class labels.

        Returns a tuple of:
        - mu: Tensor of shape (N, J), the means of q(z | x, y).
        - logvar: Tensor of shape (N, J), the logs of its variances, log sigma^2.
        """
        # ================ YOUR CODE HERE (handout section 3.4) ===============
        raise NotImplementedError("CVAE.encode is not implemented yet: see handout section 3.4 (Problem 3, cvae.py)")
        # ========================== END OF YOUR CODE =========================

    def reparameterize(self, mu, logvar):
        """Draw z ~ N(mu, diag(exp(logvar))) with the reparameterization trick, so that gradients
        flow back into mu and logvar: z = mu + sigma * eps, where sigma = exp(0.5 * logvar) is the
        standard deviation and eps ~ N(0, I) is fresh standard normal noise of the same shape.

        Inputs:
        - mu: Tensor of shape (N, J).
        - logvar: Tensor of shape (N, J).

        Returns:
        - z: Tensor of shape (N, J), on the same device and of the same dtype as mu.
        """
        # ================ YOUR CODE HERE (handout section 3.5) ===============
        raise NotImplementedError("CVAE.reparameterize is not implemented yet: see handout section 3.5 (Problem 3, cvae.py)")
        # ========================== END OF YOUR CODE =========================

    def decode(self, z, y):
        """The decoder p(x | z, y): the Bernoulli mean (probability of a white pixel) of every pixel.

        Inputs:
        - z: Tensor of shape (N, J), latent codes.
        - y: int64 tensor of shape (N,), the class labels.

        Returns:
        - Tensor of shape (N, D) with values in (0, 1).
        """
        # ================ YOUR CODE HERE (handout section 3.6) ===============
        raise NotImplementedError("CVAE.decode is not implemented yet: see handout section 3.6 (Problem 3, cvae.py)")
        # ========================== END OF YOUR CODE =========================

    def forward(self, x, y):
        """Encode, sample a latent code with the reparameterization trick, and decode.

        It samples z in training and in evaluation mode alike (model.eval() changes nothing here).

        Inputs:
        - x: Tensor of shape (N, D) or (N, ...) with D elements per sample, values in [0, 1].
        - y: int64 tensor of shape (N,), the class labels.

        Returns a tuple of:
        - recon: Tensor of shape (N, D), the decoded Bernoulli means, in (0, 1).
        - mu: Tensor of shape (N, J).
        - logvar: Tensor of shape (N, J).
        """
        # ================ YOUR CODE HERE (handout section 3.6) ===============
        raise NotImplementedError("CVAE.forward is not implemented yet: see handout section 3.6 (Problem 3, cvae.py)")
        # ========================== END OF YOUR CODE =========================


def kl_divergence(mu, logvar):
    """The KL divergence KL(N(mu, diag(exp(logvar))) || N(0, I)) of each sample, in closed form
    (section 3.2):  -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)).

    Inputs:
    - mu: Tensor of shape (N, J).
    - logvar: Tensor of shape (N, J).

    Returns:
    - Tensor of shape (N,): one (non-negative) divergence per sample, summed over the J latent
      dimensions.
    """
    # ================== YOUR CODE HERE (handout section 3.7) =================
    raise NotImplementedError("kl_divergence is not implemented yet: see handout section 3.7 (Problem 3, cvae.py)")
    # ============================ END OF YOUR CODE ===========================


def loss_function(recon, x, mu, logvar):
    """The negative ELBO, averaged over the batch.

        loss = (1/N) * sum_i [ sum_pixels BCE(recon_i, x_i) + KL_i ],

    where BCE(r, t) = -(t * log r + (1 - t) * log(1 - r)) is summed (not averaged) over the D
    pixels of image i and KL_i = kl_divergence(mu, logvar)[i].

    Do not evaluate that formula literally: once the decoder saturates, r rounds to exactly 1 in
    float32 (sigmoid(17) == 1.0) and a pixel of exactly 1 gives 0 * log(0) = NaN. Use
    F.binary_cross_entropy (it clamps the logs at -100), or clamp r away from 0 and 1.

    Inputs:
    - recon: Tensor of shape (N, D), decoded Bernoulli means in (0, 1).
    - x: Tensor of shape (N, D), or (N, ...) with D elements per sample, the images in [0, 1]
      (flatten it to recon's shape).
    - mu: Tensor of shape (N, J).
    - logvar: Tensor of shape (N, J).

    Returns:
    - A scalar tensor (0-dimensional), differentiable with respect to recon, mu and logvar.
    """
    # ================== YOUR CODE HERE (handout section 3.8) =================
    raise NotImplementedError("loss_function is not implemented yet: see handout section 3.8 (Problem 3, cvae.py)")
    # ============================ END OF YOUR CODE ===========================
