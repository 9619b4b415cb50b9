"""Loaders: MNIST as tensors (through torchvision), LFW faces from a cached, preprocessed tensor file.

Both return whole datasets as tensors; at MNIST's and LFW's size that is a few hundred MB at most
and lets the training loops slice batches without DataLoader overhead.
"""
from pathlib import Path

import torch

from hw3.datasets import data_root, require
from hw3.files import atomic_file

LFW_IMAGES = "lfw/lfw-deepfunneled"


def load_mnist(train: bool = True, root=None):
    """MNIST as ``(images, labels)``: images float32 (N,1,28,28) in [0,1], labels int64 (N,).

    N is 60,000 for the training set and 10,000 for the test set.
    """
    from torchvision.datasets import MNIST  # imported here: torchvision is slow to import

    dataset = MNIST(str(require("mnist", root)), train=train, download=False)
    return dataset.data.unsqueeze(1).float().div_(255), dataset.targets.clone()


def lfw_cache_path(size: int, crop: int, grayscale: bool, root=None) -> Path:
    mode = "gray" if grayscale else "rgb"
    return Path(root or data_root()) / "cache" / f"lfw-deepfunneled-crop{crop}-{size}px-{mode}.pt"


def load_lfw_images(size: int = 64, crop: int = 120, grayscale: bool = True, root=None):
    """Every LFW deep-funneled image, centre-cropped to ``crop``² pixels and resized to ``size``².

    Returns ``(images, files)``: images uint8 (13233, C, size, size) with C = 1 (grayscale) or 3,
    and files the matching paths relative to lfw-deepfunneled/ ("Name/Name_0001.jpg"), sorted.
    The first call decodes the JPEGs and caches the tensor under datasets/cache/; later calls load
    the cache.
    """
    cache = lfw_cache_path(size, crop, grayscale, root)
    if cache.is_file():
        saved = torch.load(cache)
        return saved["images"], saved["files"]
    from PIL import Image  # only needed to build the cache

    folder = require("lfw", root) / LFW_IMAGES
    files = sorted(str(p.relative_to(folder)) for p in folder.glob("*/*.jpg"))
    mode = "L" if grayscale else "RGB"
    images = torch.empty(len(files), 1 if grayscale else 3, size, size, dtype=torch.uint8)
    for i, rel in enumerate(files):
        with Image.open(folder / rel) as image:
            width, height = image.size
            left, top = (width - crop) // 2, (height - crop) // 2
            face = image.convert(mode).crop((left, top, left + crop, top + crop))
            face = face.resize((size, size), Image.BILINEAR)
        pixels = torch.frombuffer(bytearray(face.tobytes()), dtype=torch.uint8)
        images[i] = pixels.view(size, size, -1).permute(2, 0, 1)
    save_atomically({"images": images, "files": files}, cache)
    return images, files


def save_atomically(obj, path: Path) -> None:
    """torch.save through a temporary file, so readers never see a half-written file; readable by all
    (caches are shared, e.g. with grading sandboxes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        torch.save(obj, f)


def lfw_image_file(name: str, number) -> str:
    """The path of image ``number`` of person ``name``, relative to lfw-deepfunneled/."""
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_lfw_people(split: str = "peopleDevTrain.txt", root=None) -> dict:
    """{person name: number of images} from an official people split file (View 1 format)."""
    lines = (require("lfw", root) / "lfw" / split).read_text().split("\n")
    count = int(lines[0])
    people = {}
    for line in lines[1:1 + count]:
        name, n = line.split()
        people[name] = int(n)
    return people


def read_lfw_pairs(split: str = "pairsDevTest.txt", root=None) -> list:
    """[(file1, file2, same)] from an official pairs split file; files relative to lfw-deepfunneled/.

    ``same`` is True for a matched pair (same person). View 1 format: a count N, then N matched
    lines ``name n1 n2`` and N mismatched lines ``name1 n1 name2 n2``.
    """
    lines = (require("lfw", root) / "lfw" / split).read_text().split("\n")
    count = int(lines[0].split()[-1])
    pairs = []
    for line in lines[1:1 + 2 * count]:
        fields = line.split()
        if len(fields) == 3:
            pairs.append((lfw_image_file(fields[0], fields[1]), lfw_image_file(fields[0], fields[2]), True))
        else:
            pairs.append((lfw_image_file(fields[0], fields[1]), lfw_image_file(fields[2], fields[3]), False))
    return pairs
