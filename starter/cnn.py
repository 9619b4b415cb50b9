"""Problem 1: a convolutional network whose convolutions you write yourself.

You implement three pieces (see handout section 1):

* ``conv2d`` (1.1): the 2-D convolution layer of every CNN, written from its formula -- a valid
  cross-correlation with stride 1 and no padding -- without calling any of PyTorch's own
  convolution functions;
* ``global_pool`` (1.2): global average or max pooling of a feature map;
* ``ConvNet`` (1.3): a small CNN for MNIST built on these two functions.

Everything stays a differentiable PyTorch expression, so autograd computes the gradients and the
provided training loop (``python -m hw3 cnn``) can train the network.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv2d(x, weight, bias=None):
    """A 2-D convolution layer: valid cross-correlation, stride 1, no padding.

    For every image n and output channel (filter) f,

        Y[n, f] = b[f] + sum_c X[n, c] * W[f, c]

    where * is the 2-D cross-correlation of one input channel with one kernel,

        (X[n, c] * W[f, c])[i, j] = sum_{p=0}^{HH-1} sum_{q=0}^{WW-1} X[n, c, i + p, j + q] * W[f, c, p, q].

    The kernel is NOT flipped (that is what torch.nn.functional.conv2d computes too).

    Do not call torch.nn.functional.conv*, torch.conv*, torch.convolution or nn.Conv*: write the
    formula with tensor operations. It must be vectorised, or training the ConvNet takes hours: no
    Python loops over images, channels, filters or output pixels; at most one loop, over the
    HH x WW kernel offsets. (Test 1.1.6 allows 1,000 tensor operations per call, counted where
    they reach PyTorch's dispatcher: one einsum counts 12-18 there, a loop over the 25 offsets of
    a 5 x 5 kernel about 330-500, the reference solution 19.) Hint: Tensor.unfold (or
    torch.as_strided) gives every HH x WW window of x without copying; then one einsum or matmul
    does the sums. Autograd differentiates the result for you.

    Inputs:
    - x: input images, shape (N, C, H, W)
    - weight: filters, shape (F, C, HH, WW), with HH <= H and WW <= W
    - bias: biases, shape (F,), or None for no bias

    Returns:
    - y: output, shape (N, F, H - HH + 1, W - WW + 1), same dtype and device as x
    """
    # ================== YOUR CODE HERE (handout section 1.1) =================
    raise NotImplementedError("conv2d is not implemented yet: see handout section 1.1 (Problem 1, cnn.py)")
    # ============================ END OF YOUR CODE ===========================


def global_pool(y, mode):
    """Global pooling: one number per image and channel, over all spatial positions.

    Inputs:
    - y: feature maps, shape (N, F, H', W')
    - mode: "avg" (mean over the H' x W' positions) or "max" (maximum over them)

    Returns:
    - pooled: shape (N, F)

    Raises ValueError for any other mode.
    """
    # ================== YOUR CODE HERE (handout section 1.2) =================
    raise NotImplementedError("global_pool is not implemented yet: see handout section 1.2 (Problem 1, cnn.py)")
    # ============================ END OF YOUR CODE ===========================


class ConvNet(nn.Module):
    """A small CNN for 28 x 28 images, built on conv2d and global_pool above.

    Architecture (k = kernel_size):

        conv2d(in_channels -> 32, k x k) - ReLU - 2 x 2 max-pool (stride 2)
        - conv2d(32 -> 64, k x k) - ReLU - global_pool(pooling) -> (N, 64)
        - Linear(64 -> num_classes)

    Both convolutions have a bias. With in_channels=1 and num_classes=10 the network has 52,746
    parameters for k = 5 and 102,666 for k = 7.
    """

    def __init__(self, pooling="max", kernel_size=5, in_channels=1, num_classes=10):
        """Create the parameters: the weights and biases of the two convolutions, as nn.Parameter
        tensors initialised like nn.Conv2d's (uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)], with
        fan_in = C * k * k the number of inputs of one output pixel), and the final nn.Linear.

        Inputs:
        - pooling: "avg" or "max", the mode of the global pooling
        - kernel_size: k, the side of the square kernels of both convolutions
        - in_channels: C, channels of the input images
        - num_classes: number of output scores
        """
        super().__init__()
        self.pooling = pooling
        self.kernel_size = kernel_size
        # ================ YOUR CODE HERE (handout section 1.3) ===============
        raise NotImplementedError("ConvNet.__init__ is not implemented yet: see handout section 1.3 (Problem 1, cnn.py)")
        # ========================== END OF YOUR CODE =========================

    def forward(self, x):
        """The class scores of a batch of images.

        Inputs:
        - x: images, shape (N, in_channels, 28, 28)

        Returns:
        - scores: class scores (logits), shape (N, num_classes)
        """
        # ================ YOUR CODE HERE (handout section 1.3) ===============
        raise NotImplementedError("ConvNet.forward is not implemented yet: see handout section 1.3 (Problem 1, cnn.py)")
        # ========================== END OF YOUR CODE =========================
