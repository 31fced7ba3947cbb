"""``convlab.device``: PyTorch's device objects (``device("cuda:0")``, ``tensor.device``).

convlab has two devices, the CPU and one GPU. PyTorch programs name the GPU ``"cuda"``; convlab's
own code and messages call it ``"gpu"``. Both spellings name the same device everywhere.
"""

from __future__ import annotations

from typing import Any

__all__ = ["device", "CPU", "CUDA"]

_TYPES = {"cpu": "cpu", "cuda": "cuda", "gpu": "cuda"}


def _parse(spec: str) -> tuple[str, int | None]:
    kind, sep, index_text = spec.strip().lower().partition(":")
    if kind not in _TYPES or (sep and not index_text.isdigit()):
        raise RuntimeError(
            f"device: expected a device string such as 'cpu', 'cuda', 'cuda:0' or 'gpu', "
            f"got {spec!r}"
        )
    return _TYPES[kind], int(index_text) if sep else None


class device(str):  # noqa: N801 - PyTorch's name
    """A device: ``device("cpu")``, ``device("cuda")``, ``device("cuda:0")``, ``device("cuda", 0)``.

    As in PyTorch it has ``type`` (``"cpu"`` or ``"cuda"``) and ``index`` (``None`` or an int),
    and ``str(d)`` is ``"cpu"``, ``"cuda"`` or ``"cuda:0"``. It also compares equal to the
    strings that name it (``tensor.device == "cuda"``, ``== "gpu"``), since convlab accepts
    either everywhere a device is expected; ``"cuda"`` without an index equals ``"cuda:0"``
    because there is one GPU.

    Args:
        type: ``"cpu"``, ``"cuda"`` or ``"gpu"``, optionally with ``":index"``; or a device.
        index: The GPU's index (only 0 exists); not allowed with ``"cpu"``.

    Raises:
        RuntimeError: For an unknown device string, as PyTorch.
    """

    type: str
    index: int | None  # type: ignore[assignment]  # PyTorch's name shadows str.index

    def __new__(cls, type: Any, index: int | None = None) -> device:  # noqa: A002 - PyTorch's name
        if isinstance(type, device) and index is None:
            return type
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cuda:0', got {type!r}")
        kind, parsed_index = _parse(type)
        if index is not None:
            if parsed_index is not None:
                raise RuntimeError(f"device: index given twice ({type!r} and index={index!r})")
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise RuntimeError(f"device: expected a non-negative int index, got {index!r}")
            parsed_index = index
        if kind == "cpu" and parsed_index not in (None, 0):
            raise RuntimeError(f"device: the CPU has no index {parsed_index}")
        text = kind if parsed_index is None else f"{kind}:{parsed_index}"
        self = super().__new__(cls, text)
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "index", parsed_index)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"device objects are immutable (cannot set {name!r})")

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                kind, index = _parse(other)
            except RuntimeError:
                return False
            return kind == self.type and (index or 0) == (self.index or 0)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(("device", self.type))

    def __reduce__(self) -> Any:
        return (device, (str(self),))


#: The devices that ``Tensor.device`` returns.
CPU = device("cpu")
CUDA = device("cuda", 0)
