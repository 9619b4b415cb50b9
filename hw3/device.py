"""One code path for every device: CUDA when available, else CPU."""
import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
