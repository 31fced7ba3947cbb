"""torchvision.transforms' Compose, ToTensor, Normalize and Resize on torch tensors."""

import numpy as np
import torch


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
    """Bilinear, antialiased; the smaller edge becomes ``size``; uint8 stays uint8."""

    def __init__(self, size):
        self.size = size

    def __call__(self, image):
        array = torch.from_numpy(np.ascontiguousarray(image))
        h, w = array.shape[-2:]
        if h <= w:
            size = (self.size, int(self.size * w / h))
        else:
            size = (int(self.size * h / w), self.size)
        out = torch.nn.functional.interpolate(
            array[None].to(torch.float64), size, mode="bilinear", antialias=True
        )[0]
        return out.add(0.5).floor().clamp(0, 255).to(torch.uint8).numpy()
