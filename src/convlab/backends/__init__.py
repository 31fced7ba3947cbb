"""``convlab.backends``: PyTorch's ``torch.backends`` switches, for programs that set them.

convlab picks its own algorithms (see :func:`convlab.show_config`), so the cuDNN switches are
plain attributes that programs may read and set without effect; ``mps`` reports that Apple's
Metal backend is absent.
"""

from __future__ import annotations

from convlab.backends import cuda, cudnn, mkldnn, mps

__all__ = ["cuda", "cudnn", "mps", "mkldnn"]
