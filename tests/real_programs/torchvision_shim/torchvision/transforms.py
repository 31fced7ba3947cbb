"""torchvision.transforms' Compose, ToTensor, Normalize and Resize on torch tensors."""

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
    def __call__(self, image):
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(np.ascontiguousarray(image))
        if image.dtype == torch.uint8:
            return image.to(torch.float32).div(255)
        return image.to(torch.float32)


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, image):
        mean = torch.as_tensor(self.mean, dtype=image.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=image.dtype).view(-1, 1, 1)
        return (image - mean) / std


class Resize:
    """PIL's bilinear resize of a one-channel image (what torchvision does to MNIST's PIL
    images); the smaller edge becomes ``size``."""

    def __init__(self, size):
        self.size = size

    def __call__(self, image):
        h, w = image.shape[-2:]
        if h <= w:
            size = (int(self.size * w / h), self.size)
        else:
            size = (self.size, int(self.size * h / w))
        return np.asarray(Image.fromarray(image[0]).resize(size, Image.BILINEAR))[None]


class Lambda:
    def __init__(self, lambd):
        self.lambd = lambd

    def __call__(self, image):
        return self.lambd(image)
