"""Problem 1's judge: the ConvNet the handout prescribes, written with PyTorch's F.conv2d and
pooling, holding the tensors the worker trained. The training tests (1.4.x) measure its accuracy
on the test set they load. (The static checks of the submitted cnn.py stay in hw3/cnn_judge.py:
they reveal no solution.)"""
import torch.nn as nn
import torch.nn.functional as F

from autograder.judge.weights import WeightMismatch, first_fit, named_tensors


def prescribed_layers(kernel_size: int, in_channels: int = 1, num_classes: int = 10) -> list:
    """(layer, shape) of every tensor of the handout's ConvNet, in its order."""
    k = kernel_size
    return [(f"the first convolution's weights (conv2d {in_channels} -> 32, {k}x{k})", (32, in_channels, k, k)),
            ("the first convolution's bias", (32,)),
            (f"the second convolution's weights (conv2d 32 -> 64, {k}x{k})", (64, 32, k, k)),
            ("the second convolution's bias", (64,)),
            (f"the final Linear(64, {num_classes})'s weights", (num_classes, 64)),
            (f"the final Linear(64, {num_classes})'s bias", (num_classes,))]


class PrescribedConvNet(nn.Module):
    """conv2d - ReLU - 2x2 max-pool - conv2d - ReLU - global pooling - Linear, with F.conv2d,
    F.max_pool2d and PyTorch's adaptive pooling: the handout's ConvNet, the judge's code."""

    def __init__(self, tensors, pooling: str):
        super().__init__()
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        self.pooling = pooling
        for index, tensor in enumerate(tensors):
            self.register_buffer(f"t{index}", tensor)

    def forward(self, x):
        w1, b1, w2, b2, w3, b3 = (getattr(self, f"t{i}") for i in range(6))
        y = F.max_pool2d(F.relu(F.conv2d(x, w1, b1)), kernel_size=2, stride=2)
        y = F.relu(F.conv2d(y, w2, b2))
        pool = F.adaptive_max_pool2d if self.pooling == "max" else F.adaptive_avg_pool2d
        return F.linear(pool(y, 1).flatten(1), w3, b3)


def rebuild(parameters, pooling: str, kernel_size: int, in_channels: int = 1, num_classes: int = 10,
            device=None) -> PrescribedConvNet:
    """The prescribed ConvNet holding the student's trained tensors ``parameters`` ([[name, tensor],
    ...], in their model's order), each given to the first layer still empty that has its shape.
    Raises WeightMismatch (an AssertionError) naming each layer left without a tensor and each
    tensor left over."""
    parameters = named_tensors(parameters, "the trained ConvNet's parameters")
    layers = prescribed_layers(kernel_size, in_channels, num_classes)
    chosen, left = first_fit([shape for _, shape in layers], [tuple(t.shape) for _, t in parameters])
    slots = [None if index is None else parameters[index] for index in chosen]
    problems = [f"{layer}: no trained tensor of shape {shape}" for (layer, shape), slot in zip(layers, slots)
                if slot is None]
    problems += [f"{layer}: {slot[0]} is {slot[1].dtype}, not floating point" for (layer, _), slot
                 in zip(layers, slots) if slot is not None and not slot[1].is_floating_point()]
    if left:
        extra = ", ".join(f"{parameters[i][0]} {tuple(parameters[i][1].shape)}" for i in left)
        problems.append(f"the prescribed network has no layer for {extra}")
    found = ", ".join(f"{name} {tuple(t.shape)}" for name, t in parameters) or "none"
    if problems:
        raise WeightMismatch(
            f"the trained ConvNet('{pooling}', {kernel_size}) does not have the handout's layers: "
            f"{'; '.join(problems)} (its parameters: {found}). It should hold conv {kernel_size}x{kernel_size} "
            f"{in_channels}->32 and 32->64 weights, each with a bias, and a Linear(64, {num_classes}) with its bias.")
    model = PrescribedConvNet([slot[1].detach().float().clone() for slot in slots], pooling)
    return model.to(device) if device is not None else model
