"""Small pieces every training loop shares: seeding, batching tensors, a progress bar."""
import random

import numpy as np
import torch
from tqdm.auto import tqdm


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch.Generator seeded the same way for data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def batches(*tensors, batch_size: int, generator: torch.Generator = None, shuffle: bool = True):
    """Yield tuples of aligned mini-batches from equally long tensors (a shuffled pass, by default)."""
    n = len(tensors[0])
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        yield tuple(t[index] for t in tensors)


def progress(iterable=None, **kwargs):
    """A tqdm progress bar; quiet when the output is not a terminal (tests, CI, logs)."""
    kwargs.setdefault("disable", None)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
