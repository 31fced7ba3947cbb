"""``torch.utils.data.dataloader``'s names (:mod:`convlab.data.loader`)."""

from __future__ import annotations

from convlab.data.loader import (
    DataLoader,
    default_collate,
    default_convert,
    get_worker_info,
)

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]
