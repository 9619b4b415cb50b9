"""Realistic mistakes in cnn.py (each must lose points) and correct alternatives (full marks).

    python -m autograder.validate.try_variant cnn NAME            # all of Problem 1's tests
    python -m autograder.validate.try_variant cnn NAME -m "not training"
"""
from autograder.validate.variants import Variant

EINSUM = 'y = torch.einsum("ncijpq,fcpq->nfij", windows, weight)'
BIAS = "        y = y + bias.view(1, -1, 1, 1)\n"
# The whole body of the reference conv2d, replaced by the variants written another way.
CONV_BODY = """    HH, WW = weight.shape[2], weight.shape[3]
    # windows[n, c, i, j, p, q] = x[n, c, i + p, j + q]: shape (N, C, H', W', HH, WW), a view of x.
    windows = x.unfold(2, HH, 1).unfold(3, WW, 1)
    y = torch.einsum("ncijpq,fcpq->nfij", windows, weight)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y
"""
AVG = "        return y.mean(dim=(2, 3))\n"
MAX = "        return y.amax(dim=(2, 3))\n"
RAISE = """    raise ValueError(f"unknown pooling mode {mode!r}: expected 'avg' or 'max'")\n"""
FIRST = "y = F.max_pool2d(F.relu(conv2d(x, self.conv1_weight, self.conv1_bias)), kernel_size=2, stride=2)"
SECOND = "y = F.relu(conv2d(y, self.conv2_weight, self.conv2_bias))"
POOL = "return self.fc(global_pool(y, self.pooling))"
INIT = """        for weight, bias in ((self.conv1_weight, self.conv1_bias), (self.conv2_weight, self.conv2_bias)):
            bound = 1.0 / (weight[0].numel() ** 0.5)
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)
"""


def conv_body(text):
    """A variant replacing the whole conv2d body by ``text`` (indented 4 spaces, ends with a newline)."""
    return ((CONV_BODY, text),)


def offset_loop(start="x.new_zeros(N, F_, Hp, Wp)", accumulate="y = y +",
                bias="y = y + bias.view(1, -1, 1, 1)", size="H - HH + 1, W - WW + 1"):
    """A variant whose conv2d loops over the HH x WW kernel offsets, adding to ``y = start`` each offset's
    sum over channels of a shifted slice; the variants differ in the accumulator, how they add, the bias
    and the output size ``Hp, Wp``."""
    return conv_body(f"""    N, C, H, W = x.shape
    F_, _, HH, WW = weight.shape
    Hp, Wp = {size}
    y = {start}
    for p in range(HH):
        for q in range(WW):
            {accumulate} torch.einsum("nchw,fc->nfhw", x[:, :, p:p + Hp, q:q + Wp], weight[:, :, p, q])
    if bias is not None:
        {bias}
    return y
""")


VARIANTS = [
    # --- wrong: each must lose points ----------------------------------------------------------
    Variant("cnn", "true-convolution", "flips the kernel (textbook convolution instead of cross-correlation)",
            replace=((EINSUM, 'y = torch.einsum("ncijpq,fcpq->nfij", windows, weight.flip(2, 3))'),)),
    Variant("cnn", "bias-wrong-axis", "adds the bias along the last (width) axis instead of the channel axis",
            replace=((BIAS, "        y = y + bias\n"),)),
    Variant("cnn", "bias-dropped", "forgets to add the bias",
            replace=((BIAS, "        pass\n"),)),
    Variant("cnn", "bias-none-crash", "always adds the bias: conv2d(x, w) and bias=None crash",
            replace=(("    if bias is not None:\n        y = y + bias.view(1, -1, 1, 1)\n",
                      "    y = y + bias.view(1, -1, 1, 1)\n"),)),
    Variant("cnn", "channel-mean", "averages over the input channels instead of summing them",
            replace=((EINSUM, 'y = torch.einsum("ncijpq,fcpq->nfcij", windows, weight).mean(dim=2)'),)),
    Variant("cnn", "first-channel-only", "uses only the first input channel (channel sum missing)",
            replace=((EINSUM, 'y = torch.einsum("nijpq,fpq->nfij", windows[:, 0], weight[:, 0])'),)),
    Variant("cnn", "off-by-one", "loops over kernel offsets with an output of H-HH x W-WW (off by one), "
                                 "one row/column short",
            replace=offset_loop(size="H - HH, W - WW")),
    Variant("cnn", "float32-output", "allocates the output with torch.zeros (float32) and accumulates into it "
                                     "in place: float64 inputs give a float32, less precise result",
            replace=offset_loop(start="torch.zeros(N, F_, Hp, Wp)", accumulate="y +=")),
    Variant("cnn", "detached", "builds the output from detached tensors (no gradients reach x, weight, bias)",
            replace=((EINSUM, 'y = torch.einsum("ncijpq,fcpq->nfij", windows.detach(), weight.detach())'),
                     (BIAS, "        y = y + bias.detach().view(1, -1, 1, 1)\n"))),
    Variant("cnn", "calls-torch-conv", "conv2d calls torch.nn.functional.conv2d",
            replace=conv_body("    return F.conv2d(x, weight, bias)\n")),
    Variant("cnn", "calls-torch-conv-hidden", "conv2d reaches PyTorch's convolution operator through torch.ops",
            replace=conv_body("    return torch.ops.aten.convolution(x, weight, bias, [1, 1], [0, 0], [1, 1], False, "
                              "[0, 0], 1)\n")),
    Variant("cnn", "torch-conv-in-a-thread", "conv2d runs F.conv2d, held in a list at import, in a thread "
                                           "pool (the red team's: out of a per-thread guard's sight)",
            replace=conv_body("""    import concurrent.futures
    held = []
    held.append(F.conv2d)
    return concurrent.futures.ThreadPoolExecutor(1).submit(held[0], x, weight, bias).result()
""")),
    Variant("cnn", "naive-loops", "the formula as six nested Python loops (right values, far too slow)",
            replace=conv_body("""    N, C, H, W = x.shape
    F_, _, HH, WW = weight.shape
    rows = []
    for n in range(N):
        for f in range(F_):
            for i in range(H - HH + 1):
                for j in range(W - WW + 1):
                    total = bias[f] if bias is not None else x.new_zeros(())
                    for c in range(C):
                        for p in range(HH):
                            for q in range(WW):
                                total = total + x[n, c, i + p, j + q] * weight[f, c, p, q]
                    rows.append(total)
    return torch.stack(rows).view(N, F_, H - HH + 1, W - WW + 1)
""")),
    Variant("cnn", "pixel-loop", "loops over the output pixels of each image and channel (four nested loops)",
            replace=conv_body("""    N, C, H, W = x.shape
    F_, _, HH, WW = weight.shape
    y = x.new_zeros(N, F_, H - HH + 1, W - WW + 1)
    for n in range(N):
        for f in range(F_):
            for i in range(H - HH + 1):
                for j in range(W - WW + 1):
                    y[n, f, i, j] = (x[n, :, i:i + HH, j:j + WW] * weight[f]).sum()
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y
""")),
    Variant("cnn", "pool-wrong-dims", "global average pooling over the channel and row axes instead of the two "
                                      "spatial ones",
            replace=((AVG, "        return y.mean(dim=(1, 2))\n"),)),
    Variant("cnn", "pool-max-namedtuple", "global max pooling with Tensor.max(dim), forgetting that it returns "
                                          "(values, indices)",
            replace=((MAX, "        return y.max(dim=3)[0].max(dim=2)\n"),)),
    Variant("cnn", "pool-squeeze", "global max pooling through F.max_pool2d and squeeze(): a batch of one "
                                   "loses its batch axis",
            replace=((MAX, "        return F.max_pool2d(y, kernel_size=y.shape[2:]).squeeze()\n"),)),
    Variant("cnn", "pool-default-mode", "an unknown mode silently falls back to max pooling",
            replace=((RAISE, "    return y.amax(dim=(2, 3))\n"),)),
    Variant("cnn", "convnet-ignores-pooling", "ConvNet always uses max pooling, whatever its pooling argument",
            replace=((POOL, 'return self.fc(global_pool(y, "max"))'),)),
    Variant("cnn", "convnet-torch-conv", "ConvNet calls F.conv2d instead of this file's conv2d",
            replace=((FIRST, "y = F.max_pool2d(F.relu(F.conv2d(x, self.conv1_weight, self.conv1_bias)), "
                             "kernel_size=2, stride=2)"),
                     (SECOND, "y = F.relu(F.conv2d(y, self.conv2_weight, self.conv2_bias))"))),
    Variant("cnn", "convnet-no-relu", "ConvNet forgets the ReLU after the second convolution",
            replace=((SECOND, "y = conv2d(y, self.conv2_weight, self.conv2_bias)"),)),
    Variant("cnn", "convnet-no-maxpool", "ConvNet forgets the 2x2 max-pool",
            replace=((FIRST, "y = F.relu(conv2d(x, self.conv1_weight, self.conv1_bias))"),)),
    Variant("cnn", "convnet-avgpool", "ConvNet uses a 2x2 average pool instead of max-pool",
            replace=((FIRST, "y = F.avg_pool2d(F.relu(conv2d(x, self.conv1_weight, self.conv1_bias)), "
                             "kernel_size=2, stride=2)"),)),
    Variant("cnn", "convnet-no-bias", "ConvNet's convolutions have no bias (52,650 parameters)",
            replace=((FIRST, "y = F.max_pool2d(F.relu(conv2d(x, self.conv1_weight)), kernel_size=2, stride=2)"),
                     (SECOND, "y = F.relu(conv2d(y, self.conv2_weight))"),
                     ("        self.conv1_bias = nn.Parameter(torch.empty(32))\n", "        self.conv1_bias = None\n"),
                     ("        self.conv2_bias = nn.Parameter(torch.empty(64))\n", "        self.conv2_bias = None\n"),
                     (INIT, """        for weight in (self.conv1_weight, self.conv2_weight):
            bound = 1.0 / (weight[0].numel() ** 0.5)
            nn.init.uniform_(weight, -bound, bound)
"""))),
    Variant("cnn", "convnet-randn-init", "initialises the convolution weights with torch.randn (standard "
                                         "deviation 1, far too large)",
            replace=((INIT, "        for p in (self.conv1_weight, self.conv1_bias, self.conv2_weight, "
                            "self.conv2_bias):\n            nn.init.normal_(p)\n"),)),
    Variant("cnn", "convnet-uninitialised", "leaves the torch.empty parameters uninitialised",
            replace=((INIT, ""),)),
    Variant("cnn", "accumulator-on-cpu", "a loop over kernel offsets accumulating into torch.zeros(..., "
                                         "dtype=x.dtype) without device=x.device: on a GPU it raises",
            replace=offset_loop(start="torch.zeros(N, F_, Hp, Wp, dtype=x.dtype)")),
    Variant("cnn", "zero-bias-on-cpu", "bias=None replaced by torch.zeros(F, dtype=x.dtype) made on the CPU "
                                       "(right on the CPU, raises on a GPU)",
            replace=(("    if bias is not None:\n        y = y + bias.view(1, -1, 1, 1)\n",
                      "    if bias is None:\n        bias = torch.zeros(weight.shape[0], dtype=x.dtype)\n"
                      "    y = y + bias.view(1, -1, 1, 1)\n"),)),
    # --- correct alternatives: each must keep full marks --------------------------------------------
    Variant("cnn", "accumulator-new-zeros", "a loop over kernel offsets accumulating in place into "
                                            "x.new_zeros(...) (x's dtype and device)", correct=True,
            replace=offset_loop(accumulate="y +=", bias="y += bias.view(1, -1, 1, 1)")),
    Variant("cnn", "im2col-matmul", "im2col by hand: the windows as a (N*H'*W', C*HH*WW) matrix times the "
                                    "flattened filters", correct=True,
            replace=conv_body("""    N, C, H, W = x.shape
    F_, _, HH, WW = weight.shape
    Hp, Wp = H - HH + 1, W - WW + 1
    cols = x.unfold(2, HH, 1).unfold(3, WW, 1).permute(0, 2, 3, 1, 4, 5).reshape(N * Hp * Wp, C * HH * WW)
    y = cols @ weight.reshape(F_, -1).t()
    if bias is not None:
        y = y + bias
    return y.reshape(N, Hp, Wp, F_).permute(0, 3, 1, 2)
""")),
    Variant("cnn", "stacked-shifted-slices", "the HH*WW shifted slices x[:, :, p:p+H', q:q+W'] stacked by a loop "
                                             "over kernel offsets, then one einsum", correct=True,
            replace=conv_body("""    N, C, H, W = x.shape
    F_, _, HH, WW = weight.shape
    Hp, Wp = H - HH + 1, W - WW + 1
    slices = torch.stack([x[:, :, p:p + Hp, q:q + Wp] for p in range(HH) for q in range(WW)], dim=2)
    y = torch.einsum("nckhw,fck->nfhw", slices, weight.reshape(F_, C, HH * WW))
    if bias is not None:
        y = y + bias[None, :, None, None]
    return y
""")),
    Variant("cnn", "kernel-offset-loop", "a Python loop over the HH x WW kernel offsets, each adding a sum over "
                                         "channels of a shifted slice (the handout allows it)", correct=True,
            replace=offset_loop(start="0", bias="y = y + bias[None, :, None, None]")),
    Variant("cnn", "as-strided-tensordot", "windows through torch.as_strided, summed with tensordot", correct=True,
            replace=conv_body("""    N, C, H, W = x.shape
    F_, _, HH, WW = weight.shape
    x = x.contiguous()
    sn, sc, sh, sw = x.stride()
    windows = torch.as_strided(x, (N, H - HH + 1, W - WW + 1, C, HH, WW), (sn, sh, sw, sc, sh, sw))
    y = torch.tensordot(windows, weight, dims=([3, 4, 5], [1, 2, 3])).permute(0, 3, 1, 2)
    if bias is not None:
        y = y + bias.reshape(1, F_, 1, 1)
    return y
""")),
    Variant("cnn", "functional-unfold", "im2col with torch.nn.functional.unfold (not a convolution), then matmul",
            correct=True, replace=conv_body("""    N, C, H, W = x.shape
    F_, _, HH, WW = weight.shape
    cols = F.unfold(x, (HH, WW))                     # (N, C*HH*WW, H'*W')
    y = weight.reshape(F_, -1) @ cols                # (N, F, H'*W')
    if bias is not None:
        y = y + bias.reshape(1, F_, 1)
    return y.reshape(N, F_, H - HH + 1, W - WW + 1)
""")),
    Variant("cnn", "pool-flatten", "global pooling by flattening the maps: y.flatten(2).mean(-1) / .max(-1).values",
            correct=True, replace=((AVG, "        return y.flatten(2).mean(-1)\n"),
                                   (MAX, "        return y.flatten(2).max(-1).values\n"))),
    Variant("cnn", "convnet-conv2d-modules", "ConvNet keeps its weights in nn.Conv2d modules (default init) but "
                                             "convolves with this file's conv2d", correct=True,
            replace=(("""        k = kernel_size
        self.conv1_weight = nn.Parameter(torch.empty(32, in_channels, k, k))
        self.conv1_bias = nn.Parameter(torch.empty(32))
        self.conv2_weight = nn.Parameter(torch.empty(64, 32, k, k))
        self.conv2_bias = nn.Parameter(torch.empty(64))
""", """        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size)
        self.conv2 = nn.Conv2d(32, 64, kernel_size)
"""), (INIT, ""),
                (FIRST, "y = F.max_pool2d(F.relu(conv2d(x, self.conv1.weight, self.conv1.bias)), 2)"),
                (SECOND, "y = F.relu(conv2d(y, self.conv2.weight, bias=self.conv2.bias))"),
                (POOL, "return self.fc(global_pool(y, mode=self.pooling))"))),
]
