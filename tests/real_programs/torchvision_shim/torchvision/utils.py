"""torchvision.utils.save_image (a grid of up to ``nrow`` images a row, PNG through PIL)."""

import math

import torch
from PIL import Image


def save_image(tensor, fp, nrow=8, padding=2, normalize=False, **kwargs):
    images = tensor.detach().cpu().float()
    if images.dim() == 3:
        images = images[None]
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    if normalize:
        images = (images - images.min()) / max(float(images.max() - images.min()), 1e-5)
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = torch.zeros(c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    for k in range(n):
        y, x = divmod(k, cols)
        top, left = padding + y * (h + padding), padding + x * (w + padding)
        grid[:, top : top + h, left : left + w] = images[k]
    pixels = grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(fp)
