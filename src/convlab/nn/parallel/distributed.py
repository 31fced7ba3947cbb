"""``DistributedDataParallel``: one model replica per rank, gradients averaged after backward.

At wrap time the ranks check that their models have the same parameters (names, shapes,
dtypes) and take rank 0's parameter and buffer values. In a training step each rank runs
forward and backward on its shard of the batch; when backward is done, the gradients are
averaged over the ranks in flat buckets (one all-reduce per bucket of about ``bucket_cap_mb``,
filled in reverse registration order, as PyTorch's), so every rank's optimizer takes the same
step.

How the end of backward is found: the first parameter gradient of a backward pass queues
a final callback (``Variable._execution_engine.queue_callback``, as PyTorch's reducer does),
which the autograd engine runs once every gradient of that pass is accumulated; the callback
averages the buckets. This works whatever the module's inputs are (token ids included).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from convlab._tensor import Tensor
from convlab.autograd import Variable, is_grad_enabled, no_grad
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = ["DistributedDataParallel"]

#: PyTorch's default bucket size.
DEFAULT_BUCKET_MB = 25.0


def _signature(named: list[tuple[str, Parameter]]) -> bytes:
    return "\n".join(f"{n} {tuple(p.shape)} {p._data.dtype}" for n, p in named).encode()


class DistributedDataParallel(Module):
    """Data parallelism over the ranks of a process group
    (``torch.nn.parallel.DistributedDataParallel``).

    Wrap the model after :func:`convlab.distributed.init_process_group` (and after moving it
    to its device); give the optimizer the wrapper's (or the model's) parameters. Each rank
    feeds its own shard of the batch; after ``loss.backward()`` every rank holds the average
    of the ranks' gradients. Use :class:`~convlab.nn.SyncBatchNorm` for batch statistics of
    the whole batch.

    Args:
        module: The model; the same architecture on every rank.
        device_ids: Accepted for PyTorch's signature (one device per process).
        output_device: Accepted for PyTorch's signature.
        dim: Must be 0 (the batch dimension; the batch is split by the data loader).
        broadcast_buffers: Copy rank 0's buffers (such as BatchNorm's running statistics) to
            every rank at the start of each forward pass with gradients enabled.
        process_group: The group to average over (default: all ranks).
        bucket_cap_mb: The bucket size in MiB (default 25, PyTorch's).
        find_unused_parameters: Accepted: parameters without a gradient in a step are left out
            of that step's buckets (on every rank alike when the ranks run the same graph).
        check_reduction: Accepted for PyTorch's signature.
        gradient_as_bucket_view: Accepted (the averaged gradients are views of the bucket).
        static_graph: Accepted for PyTorch's signature.
        **kwargs: PyTorch's other options, accepted and ignored.

    Raises:
        ValueError: Without a process group, outside ``process_group``, or for ``dim != 0``.
        RuntimeError: If the ranks' models differ in parameter names, shapes or dtypes (the
            message shows the first difference).

    Example:
        Under ``mpiexec``, after ``dist.init_process_group()``::

            model = nn.parallel.DistributedDataParallel(model)
            loss_fn(model(x_shard), y_shard).backward()  # gradients: the ranks' average
    """

    def __init__(
        self,
        module: Module,
        device_ids: Any = None,
        output_device: Any = None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        process_group: Any = None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        from convlab.distributed import _group

        if not isinstance(module, Module):
            raise TypeError(f"module: expected a convlab.nn.Module, got {type(module).__name__}")
        if dim != 0:
            raise ValueError(f"dim: expected 0 (the batch dimension), got {dim}")
        group = _group.resolve(process_group)
        if group is None:
            raise ValueError("process_group: this rank is not a member of the group")
        cap = DEFAULT_BUCKET_MB if bucket_cap_mb is None else float(bucket_cap_mb)
        if not cap > 0:
            raise ValueError(f"bucket_cap_mb: expected a positive size, got {bucket_cap_mb}")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = bool(broadcast_buffers)
        self.process_group = process_group
        self.bucket_bytes_cap = int(cap * 2**20)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.gradient_as_bucket_view = bool(gradient_as_bucket_view)
        self.static_graph = bool(static_graph)
        self.require_backward_grad_sync = True
        object.__setattr__(self, "_group", group)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._check_same_model(named)
        self._sync_from_rank0()
        object.__setattr__(self, "_params", [p for _, p in named])
        object.__setattr__(self, "_buckets", self._plan_buckets())
        object.__setattr__(self, "_armed", False)  # this forward's backward averages
        object.__setattr__(self, "_queued", False)  # ... by a callback now queued
        object.__setattr__(self, "_reduced", False)  # ... which has run
        for p in self._params:
            p.register_hook(self._gradient_hook(p))

    # -- wrap time -----------------------------------------------------------------------------
    def _check_same_model(self, named: list[tuple[str, Parameter]]) -> None:
        """Gather every rank's parameter list (as text bytes, no pickling) and compare."""
        group = self._group
        mine = np.frombuffer(_signature(named), np.uint8)
        lengths = np.zeros(group.size(), np.int64)
        group.comm.Allgather(np.array([mine.size], np.int64), lengths)
        padded = np.zeros(int(lengths.max()), np.uint8)
        padded[: mine.size] = mine
        table = np.zeros((group.size(), padded.size), np.uint8)
        group.comm.Allgather(padded, table)
        texts = [bytes(table[r, : lengths[r]]).decode() for r in range(group.size())]
        for r, text in enumerate(texts[1:], start=1):
            if text != texts[0]:
                ours, theirs = texts[0].splitlines(), text.splitlines()
                for k in range(max(len(ours), len(theirs))):
                    a = ours[k] if k < len(ours) else "(nothing)"
                    b = theirs[k] if k < len(theirs) else "(nothing)"
                    if a != b:
                        break
                raise RuntimeError(
                    f"DistributedDataParallel: the ranks' models differ: parameter {k} is "
                    f"{a!r} on rank {group.ranks[0]} but {b!r} on rank {group.ranks[r]} "
                    f"(rank {group.ranks[0]} has {len(ours)} parameters, rank "
                    f"{group.ranks[r]} has {len(theirs)}); build the same model on every rank"
                )

    def _sync_from_rank0(self) -> None:
        from convlab.distributed import _collectives

        with no_grad():
            for t in [*self.module.parameters(), *self.module.buffers()]:
                _collectives.broadcast(t, group_src=0, group=self.process_group)

    def _plan_buckets(self) -> list[list[Parameter]]:
        """Parameters in reverse registration order, cut into buckets of at most the cap
        (a larger parameter gets a bucket of its own); one dtype and device per bucket."""
        buckets: list[list[Parameter]] = []
        size, kind = 0, None
        for p in reversed(self._params):
            nbytes = p._data.nbytes
            key = (p._data.dtype, p._backend.name)
            if not buckets or key != kind or size + nbytes > self.bucket_bytes_cap:
                buckets.append([])
                size, kind = 0, key
            buckets[-1].append(p)
            size += nbytes
        return buckets

    # -- a step --------------------------------------------------------------------------------
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """Run the wrapped module; arrange for ``backward`` to average the gradients unless in
        :meth:`no_sync`. With gradients enabled and ``broadcast_buffers``, rank 0's buffers are
        copied to every rank first."""
        if self.broadcast_buffers and is_grad_enabled():
            # training forwards only (as PyTorch's): an evaluation under no_grad on some ranks
            # alone must not wait for the others
            self._broadcast_buffers()
        armed = is_grad_enabled() and self.require_backward_grad_sync and bool(self._params)
        object.__setattr__(self, "_armed", armed)
        object.__setattr__(self, "_queued", False)
        object.__setattr__(self, "_reduced", False)
        return self.module(*inputs, **kwargs)

    def _broadcast_buffers(self) -> None:
        from convlab.distributed import _collectives

        buffers = [b for b in self.module.buffers() if b is not None]
        if not buffers or self._group.size() == 1:
            return
        by_kind: dict[Any, list[Tensor]] = {}
        for b in buffers:
            by_kind.setdefault((b._data.dtype, b._backend.name), []).append(b)
        with no_grad():
            for group in by_kind.values():
                xp = group[0]._backend.xp
                flat = xp.concatenate([b._data.reshape(-1) for b in group])
                carrier = Tensor._wrap(flat, group[0]._backend)
                _collectives.broadcast(carrier, group_src=0, group=self.process_group)
                offset = 0
                for b in group:
                    n = b._data.size
                    b._data[...] = flat[offset : offset + n].reshape(b._data.shape)
                    offset += n

    def _reduce_buckets(self) -> None:
        """Average the accumulated gradients: one all-reduce per bucket."""
        from convlab.distributed._collectives import reduce_arrays
        from convlab.distributed._reduce_op import ReduceOp

        if not self._armed or self._reduced:
            return
        object.__setattr__(self, "_reduced", True)
        for bucket in self._buckets:
            ready = [p for p in bucket if p.grad is not None]
            if not ready:
                continue
            xp = ready[0]._backend.xp
            flat = xp.concatenate([p.grad._data.reshape(-1) for p in ready])
            reduce_arrays(self._group, flat, ReduceOp.AVG)
            offset = 0
            for p in ready:
                n = p._data.size
                p.grad._data = flat[offset : offset + n].reshape(p._data.shape)
                offset += n

    def _gradient_hook(self, p: Parameter) -> Any:
        # a weak reference: the hook stays on the parameter, but once the wrapper is dropped
        # the bare model trains without collectives
        wrapper = weakref.ref(self)

        def hook(grad: Tensor) -> None:
            ddp = wrapper()
            if ddp is not None and ddp._armed and not ddp._queued and not ddp._reduced:
                # the gradient itself accumulates as usual; the averaging waits for the end
                Variable._execution_engine.queue_callback(ddp._reduce_buckets)  # type: ignore[attr-defined]
                object.__setattr__(ddp, "_queued", True)

        return hook

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Skip the averaging in the backward passes of forwards run inside the context (the
        gradients accumulate on each rank); the first backward after it averages the total."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous
