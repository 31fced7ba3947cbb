"""torchvision.transforms' Compose, ToTensor, Normalize, Resize, RandomCrop,
RandomHorizontalFlip and Lambda on PIL images and torch tensors (random draws from torch's
generator, as torchvision's)."""

import numpy as np
import torch
from PIL import Image


class Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, image):
        for t in self.transforms:
            image = t(image)
        return image


class ToTensor:
    """A PIL image (or (H, W[, C]) uint8 array) -> float32 (C, H, W) in [0, 1]."""

    def __call__(self, image):
        array = np.array(image)  # a copy: PIL's buffer is read-only
        chw = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        tensor = torch.from_numpy(np.ascontiguousarray(chw))
        if tensor.dtype == torch.uint8:
            return tensor.to(torch.float32).div(255)
        return tensor.to(torch.float32)


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, image):
        mean = torch.as_tensor(self.mean, dtype=image.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=image.dtype).view(-1, 1, 1)
        return (image - mean) / std


class Resize:
    """PIL's bilinear resize (what torchvision does to PIL images); an int ``size`` is the
    smaller edge's new length."""

    def __init__(self, size):
        self.size = size

    def __call__(self, image):
        w, h = image.size
        if not isinstance(self.size, int):
            return image.resize(tuple(reversed(self.size)), Image.BILINEAR)
        if h <= w:
            size = (int(self.size * w / h), self.size)
        else:
            size = (self.size, int(self.size * h / w))
        return image.resize(size, Image.BILINEAR)


class Lambda:
    def __init__(self, lambd):
        self.lambd = lambd

    def __call__(self, image):
        return self.lambd(image)


class RandomCrop:
    """A random ``size`` window of the image after zero ``padding`` on every side."""

    def __init__(self, size, padding=None):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = padding or 0

    def __call__(self, image):
        w, h = image.size
        p = self.padding
        if p:
            padded = Image.new(image.mode, (w + 2 * p, h + 2 * p))
            padded.paste(image, (p, p))
            image, w, h = padded, w + 2 * p, h + 2 * p
        th, tw = self.size
        top = torch.randint(0, h - th + 1, size=(1,)).item()
        left = torch.randint(0, w - tw + 1, size=(1,)).item()
        return image.crop((left, top, left + tw, top + th))


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image):
        if torch.rand(1) < self.p:
            return image.transpose(Image.FLIP_LEFT_RIGHT)
        return image
