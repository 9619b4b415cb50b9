"""Problem 4's judge: the generator the handout prescribes (section 4.3), holding the weights the
worker trained; the training test (4.8.1) draws its own noise and scores the digits it makes."""
import torch.nn as nn

from autograder.judge.weights import WeightMismatch, load_in_order, named_tensors

__all__ = ["WeightMismatch", "load_generator", "prescribed_generator"]


def prescribed_generator(noise_dim=96, device="cpu"):
    """The generator of handout section 4.3, the judge's own code, uninitialised (it draws nothing
    from the random number generator): ``load_generator`` fills it with trained weights."""
    meta = nn.Sequential(
        nn.Linear(noise_dim, 1024, device="meta"), nn.ReLU(), nn.BatchNorm1d(1024, device="meta"),
        nn.Linear(1024, 7 * 7 * 128, device="meta"), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 128, device="meta"),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, device="meta"), nn.ReLU(),
        nn.BatchNorm2d(64, device="meta"),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1, device="meta"), nn.Tanh(), nn.Flatten(),
    )
    return meta.to_empty(device=device)


def layer_name(model, key):
    """'layer 3 of the handout's generator, BatchNorm1d(1024) (its running_mean)' for key '2.running_mean'."""
    index, _, leaf = key.partition(".")
    layer = model[int(index)]
    if isinstance(layer, nn.Linear):
        what = f"Linear({layer.in_features}, {layer.out_features})"
    elif isinstance(layer, nn.ConvTranspose2d):
        what = f"ConvTranspose2d({layer.in_channels}, {layer.out_channels}, 4, stride=2, padding=1)"
    else:
        what = f"{type(layer).__name__}({layer.num_features})"
    return f"layer {int(index) + 1} of the handout's generator, {what} (its {leaf})"


def load_generator(state, noise_dim=96):
    """A ``prescribed_generator`` holding the tensors of the student's trained ``state`` ({name:
    tensor}, a state_dict), in evaluation mode.

    The tensors are taken in the state_dict's order (parameters and batch-norm statistics, layer
    after layer, as the handout lists the layers), whatever their names, and each must have the
    shape of the prescribed tensor in its place; raises WeightMismatch naming the first layer whose
    tensor is missing or has another shape."""
    model = prescribed_generator(noise_dim)
    return load_in_order(model, named_tensors(state, "the trained generator's state_dict"),
                         "your trained generator", layer=lambda key: layer_name(model, key),
                         hint=". Build the layers of handout section 4.3, in its order, in one nn.Sequential")
