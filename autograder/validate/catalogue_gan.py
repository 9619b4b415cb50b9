"""Realistic mistakes in gan.py (each must lose points) and correct alternatives (full marks).

    python -m autograder.validate.try_variant gan NAME            # all of Problem 4's tests
    python -m autograder.validate.try_variant gan NAME -m "not training"
"""
from autograder.validate.variants import Variant

NOISE = "    return torch.rand(batch_size, dim) * 2 - 1\n"
SEED = "    if seed is not None:\n        torch.manual_seed(seed)\n"
D_HEAD = "        nn.Linear(1024, 1),\n    )"
G_TANH = "        nn.Tanh(),\n"
ADAM = "return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))"
BCE = """    neg_abs = -input.abs()
    loss = input.clamp(min=0) - input * target + (1 + neg_abs.exp()).log()
    return loss.mean()
"""
D_LOSS = """    real = bce_loss(logits_real, torch.ones_like(logits_real))
    fake = bce_loss(logits_fake, torch.zeros_like(logits_fake))
"""
G_LOSS = "    return bce_loss(logits_fake, torch.ones_like(logits_fake))\n"
G_NET = """        nn.Linear(noise_dim, 1024),
        nn.ReLU(),
        nn.BatchNorm1d(1024),
"""

VARIANTS = [
    # --- wrong: each must lose points ----------------------------------------------------------
    Variant("gan", "gaussian-noise", "torch.randn instead of uniform noise",
            replace=((NOISE, "    return torch.randn(batch_size, dim)\n"),)),
    Variant("gan", "noise-0-1", "uniform noise on [0, 1) instead of [-1, 1)",
            replace=((NOISE, "    return torch.rand(batch_size, dim)\n"),)),
    Variant("gan", "noise-ignores-seed", "sample_noise never seeds the generator",
            replace=((SEED, ""),)),
    Variant("gan", "noise-seed-truthy", "`if seed:` skips seed=0",
            replace=((SEED, "    if seed:\n        torch.manual_seed(seed)\n"),)),
    Variant("gan", "discriminator-sigmoid", "the discriminator ends in a sigmoid (probabilities, not logits)",
            replace=((D_HEAD, "        nn.Linear(1024, 1),\n        nn.Sigmoid(),\n    )"),)),
    Variant("gan", "discriminator-relu", "ReLU instead of LeakyReLU(0.01) in the discriminator",
            replace=(("        nn.Linear(4 * 4 * 64, 1024),\n        nn.LeakyReLU(0.01),\n",
                      "        nn.Linear(4 * 4 * 64, 1024),\n        nn.ReLU(),\n"),)),
    Variant("gan", "generator-no-tanh", "the generator forgets the final tanh",
            replace=((G_TANH, ""),)),
    Variant("gan", "generator-sigmoid", "the generator ends in a sigmoid (images in [0, 1])",
            replace=((G_TANH, "        nn.Sigmoid(),\n"),)),
    Variant("gan", "generator-bn-before-relu", "BatchNorm before ReLU (the handout says ReLU, then BatchNorm)",
            replace=((G_NET, "        nn.Linear(noise_dim, 1024),\n        nn.BatchNorm1d(1024),\n        nn.ReLU(),\n"),)),
    Variant("gan", "adam-default-betas", "Adam with its default betas (0.9, 0.999)",
            replace=((ADAM, "return torch.optim.Adam(model.parameters(), lr=1e-3)"),)),
    Variant("gan", "sgd", "SGD instead of Adam",
            replace=((ADAM, "return torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.5)"),)),
    Variant("gan", "bce-naive", "naive BCE: -(z log sigmoid(s) + (1 - z) log(1 - sigmoid(s))), inf/nan at +-1e4",
            replace=((BCE, "    p = torch.sigmoid(input)\n"
                           "    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()\n"),)),
    Variant("gan", "bce-clamped-probabilities", "F.binary_cross_entropy on sigmoid(input): finite but wrong at +-1e4",
            replace=((BCE, "    return F.binary_cross_entropy(torch.sigmoid(input), target)\n"),)),
    Variant("gan", "bce-sum", "BCE summed instead of averaged",
            replace=(("    return loss.mean()\n", "    return loss.sum()\n"),)),
    Variant("gan", "bce-sign", "BCE with the log(1 + e^-|s|) term subtracted",
            replace=(("- input * target + (1 + neg_abs.exp()).log()", "- input * target - (1 + neg_abs.exp()).log()"),)),
    Variant("gan", "d-loss-swapped-labels", "discriminator_loss labels real 0 and fake 1",
            replace=((D_LOSS, "    real = bce_loss(logits_real, torch.zeros_like(logits_real))\n"
                              "    fake = bce_loss(logits_fake, torch.ones_like(logits_fake))\n"),)),
    Variant("gan", "d-loss-averaged", "discriminator_loss halves the sum (mean of the two terms)",
            replace=(("    return real + fake\n", "    return (real + fake) / 2\n"),)),
    Variant("gan", "g-loss-minimax", "generator_loss as the saturating minimax loss -bce(fake, 0)",
            replace=((G_LOSS, "    return -bce_loss(logits_fake, torch.zeros_like(logits_fake))\n"),)),
    Variant("gan", "g-loss-wrong-sign", "generator_loss with the wrong sign: -bce(fake, 1)",
            replace=((G_LOSS, "    return -bce_loss(logits_fake, torch.ones_like(logits_fake))\n"),)),
    Variant("gan", "g-loss-fake-label", "generator_loss labels its images fake: bce(fake, 0)",
            replace=((G_LOSS, "    return bce_loss(logits_fake, torch.zeros_like(logits_fake))\n"),)),

    Variant("gan", "d-loss-targets-on-cpu", "discriminator_loss's targets made with torch.ones(shape) / "
                                            "torch.zeros(shape) (the CPU: raises on a GPU)",
            replace=((D_LOSS, "    real = bce_loss(logits_real, torch.ones(logits_real.shape))\n"
                              "    fake = bce_loss(logits_fake, torch.zeros(logits_fake.shape))\n"),)),
    Variant("gan", "g-loss-target-on-cpu", "generator_loss's target made with torch.ones(N, 1) (the CPU)",
            replace=((G_LOSS, "    return bce_loss(logits_fake, torch.ones(logits_fake.shape[0], 1).view_as(logits_fake))\n"),)),
    Variant("gan", "bce-zeros-on-cpu", "bce_loss's max(s, 0) as torch.max(input, torch.zeros(input.shape)) (the CPU)",
            replace=(("    loss = input.clamp(min=0) - input * target",
                      "    loss = torch.max(input, torch.zeros(input.shape, dtype=input.dtype)) - input * target"),)),
    # --- correct alternatives: each must keep full marks ---------------------------------------
    Variant("gan", "noise-uniform_", "sample_noise via torch.empty(...).uniform_(-1, 1)",
            replace=((NOISE, "    return torch.empty(batch_size, dim).uniform_(-1, 1)\n"),), correct=True),
    Variant("gan", "noise-generator-object", "sample_noise through a seeded torch.Generator when a seed is given",
            replace=((SEED + NOISE,
                      "    generator = torch.Generator().manual_seed(seed) if seed is not None else None\n"
                      "    return 2 * torch.rand(batch_size, dim, generator=generator) - 1\n"),), correct=True),
    Variant("gan", "bce-with-logits", "bce_loss via F.binary_cross_entropy_with_logits",
            replace=((BCE, "    return F.binary_cross_entropy_with_logits(input, target)\n"),), correct=True),
    Variant("gan", "bce-softplus", "bce_loss as z softplus(-s) + (1 - z) softplus(s)",
            replace=((BCE, "    return (target * F.softplus(-input) + (1 - target) * F.softplus(input)).mean()\n"),),
            correct=True),
    Variant("gan", "bce-logsigmoid", "bce_loss with F.logsigmoid (stable)",
            replace=((BCE, "    return -(target * F.logsigmoid(input) + (1 - target) * F.logsigmoid(-input)).mean()\n"),),
            correct=True),
    Variant("gan", "losses-via-F", "both losses through F.binary_cross_entropy_with_logits directly",
            replace=((D_LOSS, "    real = F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))\n"
                              "    fake = F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))\n"),
                     (G_LOSS, "    return F.softplus(-logits_fake).mean()\n")), correct=True),
    Variant("gan", "targets-new-full", "targets as logits.new_ones(shape) / torch.full_like(logits, 0.0), "
                                       "max(s, 0) as torch.maximum(input, torch.zeros_like(input))",
            replace=((D_LOSS, "    real = bce_loss(logits_real, logits_real.new_ones(logits_real.shape))\n"
                              "    fake = bce_loss(logits_fake, torch.full_like(logits_fake, 0.0))\n"),
                     (G_LOSS, "    return bce_loss(logits_fake, torch.ones(logits_fake.shape, device=logits_fake.device))\n"),
                     ("    loss = input.clamp(min=0) - input * target",
                      "    loss = torch.maximum(input, torch.zeros_like(input)) - input * target")), correct=True),
]
