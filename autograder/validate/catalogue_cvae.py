"""Realistic mistakes in cvae.py (each must lose points) and correct alternatives (full marks).

    python -m autograder.validate.try_variant cvae NAME            # all of Problem 3's tests
    python -m autograder.validate.try_variant cvae NAME -m "not training"
"""
from autograder.validate.variants import Variant

ONE_HOT = "    return out.scatter_(1, labels.view(-1, 1), 1.0)\n"
ENCODE = "        h = F.relu(self.fc1(torch.cat([x, one_hot(y, self.num_classes).to(x)], dim=1)))\n"
DECODE = "        h = F.relu(self.fc3(torch.cat([z, one_hot(y, self.num_classes).to(z)], dim=1)))\n"
REPARAM = """        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + std * eps
"""
KL = "    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)\n"
BCE_SUM = '    bce = F.binary_cross_entropy(recon, x.reshape(recon.shape), reduction="sum")\n'
LOSS = BCE_SUM + "    return (bce + kl_divergence(mu, logvar).sum()) / recon.shape[0]\n"
SIGMOID = "        return torch.sigmoid(self.fc4(h))\n"
FORWARD = "        return self.decode(z, y), mu, logvar\n"

VARIANTS = [
    # --- wrong: each must lose points ----------------------------------------------------------
    # A consistent relabelling: encoder and decoder both see the shifted vector, so the model still
    # draws digit y for label y and the training tests pass; only the one_hot tests catch it.
    Variant("cvae", "one-hot-off-by-one", "one_hot puts the one in column label + 1 (mod C)",
            replace=((ONE_HOT, "    return out.scatter_(1, ((labels + 1) % num_classes).view(-1, 1), 1.0)\n"),)),
    Variant("cvae", "one-hot-long", "one_hot returns an int64 tensor (F.one_hot without .float())",
            replace=((ONE_HOT, "    return F.one_hot(labels, num_classes)\n"),)),
    Variant("cvae", "encoder-ignores-label", "the encoder sees only the image (fc1 sized for the label, fed zeros)",
            replace=((ENCODE, "        h = F.relu(self.fc1(torch.cat([x, torch.zeros(len(x), self.num_classes).to(x)], dim=1)))\n"),)),
    Variant("cvae", "decoder-ignores-label", "the decoder sees only z (fc3 sized for the label, fed zeros)",
            replace=((DECODE, "        h = F.relu(self.fc3(torch.cat([z, torch.zeros(len(z), self.num_classes).to(z)], dim=1)))\n"),)),
    Variant("cvae", "no-flatten", "encode uses x.view(-1, 784) hard-coded (fails other input sizes)",
            replace=(("        x = x.reshape(x.shape[0], -1)\n", "        x = x.view(-1, 784)\n"),)),
    Variant("cvae", "decoder-no-sigmoid", "decode returns logits (no sigmoid)",
            replace=((SIGMOID, "        return self.fc4(h)\n"),
                     (LOSS, '    bce = F.binary_cross_entropy_with_logits(recon, x.reshape(recon.shape), reduction="sum")\n'
                            '    return (bce + kl_divergence(mu, logvar).sum()) / recon.shape[0]\n'))),
    Variant("cvae", "std-is-exp-logvar", "standard deviation exp(logvar) (the variance) instead of exp(logvar / 2)",
            replace=((REPARAM, "        std = torch.exp(logvar)\n        eps = torch.randn_like(std)\n        return mu + std * eps\n"),)),
    Variant("cvae", "std-is-logvar", "uses logvar itself as the standard deviation",
            replace=((REPARAM, "        eps = torch.randn_like(logvar)\n        return mu + logvar * eps\n"),)),
    Variant("cvae", "reparameterize-returns-mu", "no noise: z = mu",
            replace=((REPARAM, "        return mu\n"),)),
    Variant("cvae", "uniform-eps", "eps ~ U[0, 1) (torch.rand_like) instead of N(0, I)",
            replace=((REPARAM, "        std = torch.exp(0.5 * logvar)\n        eps = torch.rand_like(std)\n        return mu + std * eps\n"),)),
    Variant("cvae", "eps-detached-graph", "z computed from detached mu and logvar (no gradient to the encoder)",
            replace=((REPARAM, "        std = torch.exp(0.5 * logvar.detach())\n        eps = torch.randn_like(std)\n        return mu.detach() + std * eps\n"),)),
    Variant("cvae", "kl-sign", "KL with the overall sign flipped",
            replace=((KL, "    return 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)\n"),)),
    Variant("cvae", "kl-no-half", "KL missing the factor 1/2",
            replace=((KL, "    return -torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)\n"),)),
    Variant("cvae", "kl-writeup-parenthesis", "the original writeup's last line: -1/2 sum(1 + logvar) - mu^2 - sigma^2",
            replace=((KL, "    return -0.5 * torch.sum(1 + logvar, dim=1) - torch.sum(mu.pow(2) + logvar.exp(), dim=1)\n"),)),
    Variant("cvae", "kl-variance-for-logvar", "exp(logvar) and logvar swapped: uses sigma^2 where log sigma^2 belongs",
            replace=((KL, "    return -0.5 * torch.sum(1 + logvar.exp() - mu.pow(2) - logvar, dim=1)\n"),)),
    Variant("cvae", "kl-mean-over-latent", "KL averaged over the latent dimensions instead of summed",
            replace=((KL, "    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)\n"),)),
    Variant("cvae", "kl-summed-over-batch", "kl_divergence returns one number for the batch (sum over everything)",
            replace=((KL, "    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())\n"),
                     (LOSS, BCE_SUM + '    return (bce + kl_divergence(mu, logvar)) / recon.shape[0]\n'))),
    Variant("cvae", "bce-mean-over-pixels", "BCE averaged over pixels (reduction='mean') plus the per-image KL mean",
            replace=((LOSS, "    bce = F.binary_cross_entropy(recon, x.reshape(recon.shape))\n"
                            "    return bce + kl_divergence(mu, logvar).mean()\n"),)),
    Variant("cvae", "loss-summed-over-batch", "the negative ELBO summed over the batch (PyTorch's VAE example) instead of averaged",
            replace=((LOSS, BCE_SUM + '    return bce + kl_divergence(mu, logvar).sum()\n'),)),
    Variant("cvae", "loss-without-kl", "loss_function forgets the KL term (a plain autoencoder loss)",
            replace=((LOSS, BCE_SUM + '    return bce / recon.shape[0]\n'),)),
    Variant("cvae", "loss-kl-sign", "loss_function subtracts the KL term",
            replace=((LOSS, BCE_SUM + '    return (bce - kl_divergence(mu, logvar).sum()) / recon.shape[0]\n'),)),
    Variant("cvae", "forward-decodes-mu", "forward decodes mu instead of the sampled z",
            replace=((FORWARD, "        return self.decode(mu, y), mu, logvar\n"),)),

    Variant("cvae", "one-hot-on-cpu", "one_hot starts from torch.zeros(N, C) without device=labels.device "
                                      "(the CPU: raises on a GPU)",
            replace=(("    out = torch.zeros(labels.shape[0], num_classes, device=labels.device)\n",
                      "    out = torch.zeros(labels.shape[0], num_classes)\n"),)),
    Variant("cvae", "one-hot-eye-on-cpu", "one_hot indexes rows of torch.eye(C) made on the CPU",
            replace=(("    out = torch.zeros(labels.shape[0], num_classes, device=labels.device)\n" + ONE_HOT,
                      "    return torch.eye(num_classes)[labels]\n"),)),
    Variant("cvae", "eps-randn-on-cpu", "eps = torch.randn(std.shape, dtype=std.dtype) without device= (the CPU)",
            replace=((REPARAM, "        std = torch.exp(0.5 * logvar)\n        eps = torch.randn(std.shape, dtype=std.dtype)\n"
                               "        return mu + std * eps\n"),)),
    Variant("cvae", "eps-global-device", "eps on a module-level DEVICE = cuda if available else cpu, not mu's device",
            replace=((REPARAM, "        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\n"
                               "        std = torch.exp(0.5 * logvar)\n"
                               "        eps = torch.randn(std.shape, dtype=std.dtype, device=device)\n"
                               "        return mu + std * eps\n"),)),
    # --- correct alternatives: each must keep full marks ---------------------------------------
    Variant("cvae", "one-hot-F", "F.one_hot(labels, num_classes).float()",
            replace=(("    out = torch.zeros(labels.shape[0], num_classes, device=labels.device)\n" + ONE_HOT,
                      "    return F.one_hot(labels, num_classes).float()\n"),), correct=True),
    Variant("cvae", "one-hot-eye", "index rows of an identity matrix",
            replace=(("    out = torch.zeros(labels.shape[0], num_classes, device=labels.device)\n" + ONE_HOT,
                      "    return torch.eye(num_classes, device=labels.device)[labels]\n"),), correct=True),
    Variant("cvae", "distributions", "reparameterize with Normal(mu, std).rsample(), KL with torch.distributions",
            replace=((REPARAM, "        return torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample()\n"),
                     (KL, "    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))\n"
                          "    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))\n"
                          "    return torch.distributions.kl_divergence(q, p).sum(dim=1)\n")), correct=True),
    Variant("cvae", "std-sqrt-exp", "std = sqrt(exp(logvar)), eps = torch.randn(mu.shape) on mu's device/dtype",
            replace=((REPARAM, "        std = logvar.exp().sqrt()\n"
                               "        eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device)\n"
                               "        return eps.mul(std).add(mu)\n"),), correct=True),
    Variant("cvae", "kl-half-form", "KL as 1/2 sum(sigma^2 + mu^2 - 1 - log sigma^2)",
            replace=((KL, "    return 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(-1)\n"),), correct=True),
    Variant("cvae", "bce-by-hand", "BCE written out with a clamped log, mean over images of per-image sums",
            replace=((LOSS, "    x = x.view(recon.shape)\n"
                            "    eps = 1e-12\n"
                            "    bce = -(x * (recon + eps).log() + (1 - x) * (1 - recon + eps).log()).sum(dim=1)\n"
                            "    return (bce + kl_divergence(mu, logvar)).mean()\n"),), correct=True),
    Variant("cvae", "eval-mode-mean", "reparameterize returns mu in eval mode (PyTorch's old VAE example), samples in training",
            replace=((REPARAM, "        if not self.training:\n            return mu\n" + REPARAM),), correct=True),
    Variant("cvae", "sequential-nets", "encoder trunk and decoder as nn.Sequential, torch.hstack for the concatenation",
            replace=(("        self.fc3 = nn.Linear(latent_dim + num_classes, hidden_dim)\n"
                      "        self.fc4 = nn.Linear(hidden_dim, input_dim)\n",
                      "        self.decoder = nn.Sequential(nn.Linear(latent_dim + num_classes, hidden_dim), nn.ReLU(),\n"
                      "                                     nn.Linear(hidden_dim, input_dim), nn.Sigmoid())\n"),
                     (DECODE + SIGMOID,
                      "        return self.decoder(torch.hstack([z, one_hot(y, self.num_classes).type_as(z)]))\n")),
            correct=True),
]
