"""torchvision.transforms' Compose, ToTensor, Normalize, Resize and Lambda on PIL images and
torch tensors."""

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
