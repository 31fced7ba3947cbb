"""What a trained network looks at: Grad-CAM heat maps (``convlab chart explain``)."""

from convlab.explain.gradcam import GradCAM, grad_cam

__all__ = ["GradCAM", "grad_cam"]
