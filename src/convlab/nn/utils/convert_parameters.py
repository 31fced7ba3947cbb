"""One flat vector from parameters and back (``torch.nn.utils.parameters_to_vector``)."""

from __future__ import annotations

from collections.abc import Iterable

from convlab._tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Concatenate the flattened parameters into one vector (differentiable, as PyTorch).

    Args:
        parameters: An iterable of tensors on one device.

    Returns:
        A 1-d tensor.

    Raises:
        TypeError: If an element is not a tensor, or the devices differ.
    """
    import convlab

    items = list(parameters)
    for i, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters[{i}]: expected a Tensor, got {type(p).__name__}")
        if p._backend is not items[0]._backend:
            raise TypeError(
                f"parameters[{i}]: found two parameters on different devices, "
                f"{items[0].device} and {p.device}"
            )
    return convlab.cat([p.reshape(-1) for p in items])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters' values (not recorded).

    Args:
        vec: A 1-d tensor with as many elements as the parameters together.
        parameters: An iterable of tensors.

    Raises:
        TypeError: If ``vec`` is not a tensor.
        RuntimeError: If ``vec``'s length does not match the parameters'.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    items = list(parameters)
    total = sum(p.numel() for p in items)
    if vec.numel() != total:
        raise RuntimeError(
            f"vec: expected {total} elements (the parameters together), got {vec.numel()}"
        )
    offset = 0
    flat = vec._data.reshape(-1)
    for p in items:
        n = p.numel()
        # PyTorch sets param.data to a view of vec; copying keeps optimizer references valid
        p._data[...] = flat[offset : offset + n].reshape(p._data.shape).astype(p._data.dtype)
        offset += n
