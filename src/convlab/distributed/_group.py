"""Process groups: the default (world) group over ``MPI.COMM_WORLD`` and sub-groups.

Rank and size come from MPI (``mpiexec`` starts the ranks); a :class:`ProcessGroup` holds the
MPI communicator that host arrays travel through and, for the NCCL backend, the NCCL
communicator that device arrays travel through (bootstrapped over MPI).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convlab.distributed import _mpi
from convlab.distributed._fault import install as _install_fault
from convlab.distributed._fault import uninstall as _uninstall_fault

__all__ = [
    "GroupMember",
    "ProcessGroup",
    "default_group",
    "destroy_process_group",
    "get_backend",
    "get_global_rank",
    "get_process_group_ranks",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_gloo_available",
    "is_initialized",
    "is_mpi_available",
    "is_nccl_available",
    "new_group",
    "resolve",
]

_BACKENDS = ("mpi", "nccl")


class ProcessGroup:
    """A set of ranks and the communicators their collectives run on.

    Attributes:
        comm: The ``mpi4py`` communicator of the group's ranks, in the group's rank order.
        ranks: The members' global ranks; a member's group rank is its position here.
        backend: ``"mpi"`` or ``"nccl"`` (device arrays then go through NCCL).
    """

    def __init__(self, comm: Any, ranks: list[int], backend: str) -> None:
        self.comm = comm
        self.ranks = ranks
        self.backend = backend
        self.nccl: Any = None  # the NCCL communicator, made on first use by a device collective

    def rank(self) -> int:
        """This process's rank in the group."""
        return int(self.comm.Get_rank())

    def size(self) -> int:
        """The number of ranks in the group."""
        return len(self.ranks)

    def __repr__(self) -> str:
        return f"ProcessGroup(backend={self.backend!r}, ranks={self.ranks})"


class _NonMember:
    """What :func:`new_group` returns on ranks outside the group (PyTorch's
    ``GroupMember.NON_GROUP_MEMBER``): collectives on it do nothing there."""

    def __repr__(self) -> str:
        return "GroupMember.NON_GROUP_MEMBER"


class GroupMember:
    """``torch.distributed.GroupMember``: ``WORLD`` (``None``: the default group) and
    ``NON_GROUP_MEMBER``."""

    WORLD: Any = None
    NON_GROUP_MEMBER = _NonMember()


_world: ProcessGroup | None = None
_subgroups: list[ProcessGroup] = []


def is_available() -> bool:
    """Whether ``convlab.distributed`` can run: mpi4py is installed."""
    return _mpi.mpi_available()


def is_mpi_available() -> bool:
    """Whether the MPI backend can run: mpi4py is installed."""
    return _mpi.mpi_available()


def is_nccl_available() -> bool:
    """Whether the NCCL backend's library is there: CuPy built with NCCL (imports CuPy)."""
    from convlab.distributed import _nccl

    return _nccl.nccl_available()


def is_gloo_available() -> bool:
    """False: convlab has no Gloo backend (MPI does its work)."""
    return False


def is_initialized() -> bool:
    """Whether :func:`init_process_group` has run (and :func:`destroy_process_group` not since)."""
    return _world is not None


def default_group() -> ProcessGroup:
    """The world group.

    Raises:
        ValueError: If no process group is initialised (PyTorch's type and message).
    """
    if _world is None:
        raise ValueError(
            "Default process group has not been initialized, please make sure to call "
            "init_process_group."
        )
    return _world


def resolve(group: Any) -> ProcessGroup | None:
    """The group a collective runs on: the world for ``None``, ``None`` on a non-member.

    Raises:
        ValueError: Without a process group.
        TypeError: If ``group`` is not a process group.
    """
    world = default_group()
    if group is None:
        return world
    if group is GroupMember.NON_GROUP_MEMBER:
        return None
    if not isinstance(group, ProcessGroup):
        raise TypeError(
            f"group: expected a ProcessGroup from new_group or None, got {type(group).__name__}"
        )
    return group


def _gpu_usable() -> bool:
    from convlab.backend import get_backend as backend_named

    return bool(backend_named("gpu").is_available())


def _pick_backend(backend: Any) -> str:
    if backend is None:
        from convlab.distributed import _nccl

        return "nccl" if _gpu_usable() and _nccl.nccl_available() else "mpi"
    if not isinstance(backend, str) or backend.lower() not in _BACKENDS:
        raise ValueError(
            f"backend: expected 'mpi', 'nccl' or None, got {backend!r} (convlab runs its "
            "collectives over MPI and NCCL only; use 'mpi' for CPU tensors)"
        )
    name = backend.lower()
    if name == "nccl":
        from convlab.distributed import _nccl

        if not _gpu_usable():
            raise RuntimeError("backend: 'nccl' needs a usable GPU backend (CuPy and a device)")
        if not _nccl.nccl_available():
            raise RuntimeError(
                "backend: 'nccl' needs CuPy built with NCCL (cupy.cuda.nccl); use 'mpi' to "
                "move device arrays through host copies"
            )
    return name


def _check_given(value: int, actual: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value != -1 and value != actual:
        raise ValueError(
            f"{name}: MPI gives this process {name} {actual}, got {value} (leave it -1: "
            "convlab takes rank and world size from mpiexec)"
        )


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout: Any = None,
    world_size: int = -1,
    rank: int = -1,
    store: Any = None,
    group_name: str = "",
    pg_options: Any = None,
    device_id: Any = None,
) -> None:
    """Join the job's ranks into the default process group (``torch.distributed``'s call).

    Rank and world size come from MPI: start the program with ``mpiexec -n N python ...``
    (without ``mpiexec`` it is a job of one rank). From here on, an exception that reaches the
    top of any rank prints its traceback and aborts the whole job (no rank hangs waiting for
    it). With the NCCL backend each rank uses GPU ``local_rank % device_count``.

    Args:
        backend: ``"mpi"`` (host arrays over MPI, device arrays through host copies),
            ``"nccl"`` (device arrays over NCCL) or ``None`` (NCCL where a GPU and NCCL are
            usable, MPI otherwise).
        init_method: Accepted for PyTorch's signature; only ``None`` or ``"env://"`` (MPI
            does the rendezvous).
        timeout: Accepted for PyTorch's signature (MPI has no collective timeout).
        world_size: ``-1`` or the world size MPI reports (checked).
        rank: ``-1`` or the rank MPI reports (checked).
        store: Must be ``None`` (MPI does the rendezvous).
        group_name: Accepted for PyTorch's signature.
        pg_options: Accepted for PyTorch's signature.
        device_id: Accepted for PyTorch's signature.

    Raises:
        RuntimeError: If mpi4py is missing (naming ``pip install "convlab[mpi]"``), the group
            is already initialised, or NCCL was asked for and is not usable.
        ValueError: For an unknown backend, or a rank / world size MPI contradicts.
    """
    global _world
    if _world is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    if init_method not in (None, "env://"):
        raise ValueError(
            f"init_method: expected None or 'env://', got {init_method!r} (MPI does the "
            "rendezvous: start the ranks with mpiexec)"
        )
    if store is not None:
        raise ValueError("store: expected None (MPI does the rendezvous)")
    name = _pick_backend(backend)
    mpi = _mpi.mpi()
    _check_given(world_size, mpi.COMM_WORLD.Get_size(), "world_size")
    _check_given(rank, mpi.COMM_WORLD.Get_rank(), "rank")
    comm = mpi.COMM_WORLD.Dup()  # our own context: user MPI traffic cannot match ours
    group = ProcessGroup(comm, list(range(comm.Get_size())), name)
    if name == "nccl":
        from convlab.distributed import _nccl

        _nccl.select_device(comm)
        group.nccl = _nccl.communicator(comm)
    _world = group
    _install_fault(comm)


def destroy_process_group(group: Any = None) -> None:
    """Free ``group`` (default: every group, ending the process group; PyTorch's call).

    Raises:
        ValueError: Without a process group.
    """
    global _world
    world = default_group()
    if group is not None and group is not world:
        target = resolve(group)
        if target is not None:
            _free(target)
            if target in _subgroups:
                _subgroups.remove(target)
        return
    for sub in _subgroups:
        _free(sub)
    _subgroups.clear()
    _uninstall_fault()
    _free(world)
    _world = None


def _free(group: ProcessGroup) -> None:
    group.nccl = None
    if group.comm is not None:
        group.comm.Free()
        group.comm = None


def new_group(
    ranks: Sequence[int] | None = None,
    timeout: Any = None,
    backend: str | None = None,
    pg_options: Any = None,
    use_local_synchronization: bool = False,
    group_desc: str | None = None,
    device_id: Any = None,
) -> Any:
    """A group of some ranks (an MPI sub-communicator); every rank must call it, in the same
    order, with the same ``ranks``.

    Group ranks follow the sorted global ranks, as PyTorch's. On ranks outside the group it
    returns ``GroupMember.NON_GROUP_MEMBER``, on which collectives do nothing.

    Args:
        ranks: Global ranks of the members (default: all).
        timeout: Accepted for PyTorch's signature.
        backend: ``None`` (the world's backend), ``"mpi"`` or ``"nccl"``.
        pg_options: Accepted for PyTorch's signature.
        use_local_synchronization: Must be False (the split is a world collective).
        group_desc: Accepted for PyTorch's signature.
        device_id: Accepted for PyTorch's signature.

    Raises:
        ValueError: Without a process group, or for ranks out of range or repeated.
    """
    world = default_group()
    size = world.size()
    members = list(range(size)) if ranks is None else list(ranks)
    for r in members:
        if not isinstance(r, int) or isinstance(r, bool) or not 0 <= r < size:
            raise ValueError(f"ranks: expected global ranks in [0, {size}), got {members}")
    if len(set(members)) != len(members):
        raise ValueError(f"ranks: expected distinct ranks, got {members}")
    if use_local_synchronization:
        raise ValueError("use_local_synchronization: convlab's new_group is a world collective")
    members.sort()
    name = world.backend if backend is None else _pick_backend(backend)
    mpi = _mpi.mpi()
    me = world.rank()
    inside = me in members
    color = 0 if inside else mpi.UNDEFINED
    comm = world.comm.Split(color, members.index(me) if inside else 0)
    if not inside:
        return GroupMember.NON_GROUP_MEMBER
    group = ProcessGroup(comm, members, name)
    if name == "nccl":
        from convlab.distributed import _nccl

        group.nccl = _nccl.communicator(comm)
    _subgroups.append(group)
    return group


def get_rank(group: Any = None) -> int:
    """This process's rank in ``group`` (the world by default); -1 outside ``group``.

    Raises:
        ValueError: Without a process group.
    """
    target = resolve(group)
    return -1 if target is None else target.rank()


def get_world_size(group: Any = None) -> int:
    """The number of ranks in ``group`` (the world by default); -1 outside ``group``.

    Raises:
        ValueError: Without a process group.
    """
    target = resolve(group)
    return -1 if target is None else target.size()


def get_backend(group: Any = None) -> str:
    """The backend of ``group``: ``"mpi"`` or ``"nccl"``.

    Raises:
        ValueError: Without a process group, or outside ``group``.
    """
    target = resolve(group)
    if target is None:
        raise ValueError("group: this rank is not a member of the group")
    return target.backend


def get_process_group_ranks(group: Any) -> list[int]:
    """The global ranks of ``group``'s members, in group-rank order.

    Raises:
        ValueError: Without a process group, or outside ``group``.
    """
    target = resolve(group)
    if target is None:
        raise ValueError("group: this rank is not a member of the group")
    return list(target.ranks)


def get_global_rank(group: Any, group_rank: int) -> int:
    """The global rank of ``group``'s member number ``group_rank``.

    Raises:
        ValueError: Without a process group, outside ``group``, or for a rank out of range.
    """
    ranks = get_process_group_ranks(group)
    if not isinstance(group_rank, int) or not 0 <= group_rank < len(ranks):
        raise ValueError(f"group_rank: expected an int in [0, {len(ranks)}), got {group_rank!r}")
    return ranks[group_rank]
