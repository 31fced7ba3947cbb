"""torchvision.utils.save_image through convlab's PNG writer (only the pixels matter here)."""

from convlab.vision.utils import save_image as _save_image


def save_image(tensor, fp, **kwargs):
    _save_image(tensor.detach().cpu().numpy(), fp, **kwargs)
