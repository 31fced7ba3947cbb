"""torchvision.transforms' Compose, RandomCrop, RandomHorizontalFlip, ToTensor and Normalize
on (C, H, W) images, drawing from torch's global generator as torchvision does."""

import numpy as np
import torch


class Compose:
    """Applies the transforms in order."""

    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, image):
        for t in self.transforms:
            image = t(image)
        return image


class RandomCrop:
    """Pads by `padding` and crops `size` x `size` at a random position."""

    def __init__(self, size, padding=0):
        self.size, self.padding = size, padding

    def __call__(self, image):
        p = self.padding
        image = np.pad(image, ((0, 0), (p, p), (p, p)))
        top = int(torch.randint(0, image.shape[1] - self.size + 1, size=(1,)))
        left = int(torch.randint(0, image.shape[2] - self.size + 1, size=(1,)))
        return image[:, top : top + self.size, left : left + self.size]


class RandomHorizontalFlip:
    """Mirrors the image left-right with probability `p`."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image):
        return image[..., ::-1] if torch.rand(1) < self.p else image


class ToTensor:
    """uint8 (C, H, W) image -> float32 tensor in [0, 1]."""

    def __call__(self, image):
        return torch.from_numpy(np.ascontiguousarray(image)).to(torch.float32).div(255)


class Normalize:
    """Subtracts `mean` and divides by `std` per channel."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, image):
        mean = torch.as_tensor(self.mean, dtype=image.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=image.dtype).view(-1, 1, 1)
        return (image - mean) / std
