"""Problem 3's judge: the CVAE the handout prescribes (section 3.4), holding the weights the worker
trained; the training tests (3.9.x) measure it with their own test set, noise and labels
(hw3.cvae_experiment.judge_evaluation)."""
import torch
import torch.nn.functional as F

from autograder.judge.weights import WeightMismatch, first_fit, named_tensors

__all__ = ["PrescribedCVAE", "WeightMismatch", "load_prescribed", "match_heads"]


class PrescribedCVAE(torch.nn.Module):
    """The CVAE of handout section 3.4, the judge's own code (it scores the student's trained weights):

        encoder  [x, one_hot(y)] -> Linear(D + C, H) -> ReLU -> h;  mu = Linear(H, J)(h), logvar = Linear(H, J)(h)
        decoder  [z, one_hot(y)] -> Linear(J + C, H) -> ReLU -> Linear(H, D) -> Sigmoid
    """

    LAYERS = (  # (attribute, what the handout calls it, (in, out) as functions of D, C, H, J)
        ("encoder_hidden", "the encoder's hidden layer Linear(D + C, H)", lambda d, c, h, j: (d + c, h)),
        ("encoder_mu", "the encoder's mu layer Linear(H, J)", lambda d, c, h, j: (h, j)),
        ("encoder_logvar", "the encoder's logvar layer Linear(H, J)", lambda d, c, h, j: (h, j)),
        ("decoder_hidden", "the decoder's hidden layer Linear(J + C, H)", lambda d, c, h, j: (j + c, h)),
        ("decoder_out", "the decoder's output layer Linear(H, D)", lambda d, c, h, j: (h, d)),
    )

    def __init__(self, input_dim=784, num_classes=10, hidden_dim=400, latent_dim=20):
        super().__init__()
        self.input_dim, self.num_classes = input_dim, num_classes
        self.hidden_dim, self.latent_dim = hidden_dim, latent_dim
        for attribute, _, sizes in self.LAYERS:  # uninitialised (no draw from the RNG): load_prescribed fills them
            setattr(self, attribute, torch.nn.Linear(*sizes(input_dim, num_classes, hidden_dim, latent_dim),
                                                     device="meta"))
        self.to_empty(device="cpu")

    def labels(self, y, like):
        return F.one_hot(y.long(), self.num_classes).to(like)

    def encode(self, x, y):
        x = x.reshape(len(x), -1)
        h = F.relu(self.encoder_hidden(torch.cat([x, self.labels(y, x)], dim=1)))
        return self.encoder_mu(h), self.encoder_logvar(h)

    def decode(self, z, y):
        h = F.relu(self.decoder_hidden(torch.cat([z, self.labels(y, z)], dim=1)))
        return torch.sigmoid(self.decoder_out(h))


def layers_of(state: list) -> list:
    """The student's state_dict as layers, in its order: [(prefix, {"weight": t, "bias": t} or other)]."""
    layers = {}
    for name, tensor in state:
        prefix, _, leaf = name.rpartition(".")
        layers.setdefault(prefix, {})[leaf] = tensor
    return list(layers.items())


def linear_signature(tensors: dict):
    """What a Linear layer with a bias is matched by: its weight's and bias's shapes (None otherwise)."""
    if set(tensors) != {"weight", "bias"} or not all(t.is_floating_point() for t in tensors.values()):
        return None
    return tuple(tensors["weight"].shape), tuple(tensors["bias"].shape)


def load_prescribed(state, input_dim=784, num_classes=10, hidden_dim=400, latent_dim=20):
    """A PrescribedCVAE holding the tensors of the student's ``state`` ({name: tensor}).

    Each prescribed layer takes, in the order of the handout's table, the first layer of ``state``
    not taken yet (a module's ``weight`` and ``bias``, grouped by the name before the last dot, in
    the state_dict's order) whose shapes are that Linear's: (out, in) and (out,). Raises
    WeightMismatch naming the layer when none fits, or naming the tensors that fit no layer."""
    pairs = named_tensors(state, "the trained model's state_dict")
    model = PrescribedCVAE(input_dim, num_classes, hidden_dim, latent_dim)
    sizes = (input_dim, num_classes, hidden_dim, latent_dim)
    layers = layers_of(pairs)
    listing = ", ".join(f"{name} {tuple(t.shape)}" for name, t in pairs) or "none"
    wanted = [shape(*sizes) for _, _, shape in PrescribedCVAE.LAYERS]
    chosen, left = first_fit([((fan_out, fan_in), (fan_out,)) for fan_in, fan_out in wanted],
                             [linear_signature(tensors) for _, tensors in layers])
    for (attribute, description, _), (fan_in, fan_out), found in zip(PrescribedCVAE.LAYERS, wanted, chosen):
        if found is None:
            raise WeightMismatch(
                f"{description} = Linear({fan_in}, {fan_out}) with a bias: your trained CVAE has no layer whose "
                f"weight is ({fan_out}, {fan_in}) and bias ({fan_out},) left for it (its tensors: {listing}). "
                f"Build the layers of handout section 3.4 with nn.Linear, in the table's order")
        layer = getattr(model, attribute)
        with torch.no_grad():
            layer.weight.copy_(layers[found][1]["weight"])
            layer.bias.copy_(layers[found][1]["bias"])
    extra = [f"{layers[index][0]}.{leaf}".lstrip(".") + f" {tuple(t.shape)}" for index in left
             for leaf, t in layers[index][1].items()]
    if extra:
        raise WeightMismatch(f"your trained CVAE has tensors that belong to no layer of handout section 3.4: "
                             f"{', '.join(extra)} (the prescribed model has five Linear layers and nothing else)")
    return model.eval()


@torch.no_grad()
def match_heads(model, x, y, student_mu, student_logvar):
    """The mu and logvar layers have the same shape, so their order in the student's state_dict
    decides which is which. When the student's own encode(x, y) (the worker's output for the judge's
    inputs ``x``, ``y``) agrees better with the heads swapped, swap them. Returns True if swapped."""
    mu, logvar = model.encode(x, y)
    if not (isinstance(student_mu, torch.Tensor) and isinstance(student_logvar, torch.Tensor)
            and student_mu.shape == mu.shape and student_logvar.shape == logvar.shape):
        return False
    student_mu, student_logvar = student_mu.to(mu), student_logvar.to(mu)
    as_loaded = (mu - student_mu).abs().max() + (logvar - student_logvar).abs().max()
    swapped = (logvar - student_mu).abs().max() + (mu - student_logvar).abs().max()
    if not swapped < as_loaded:
        return False
    model.encoder_mu, model.encoder_logvar = model.encoder_logvar, model.encoder_mu
    return True
