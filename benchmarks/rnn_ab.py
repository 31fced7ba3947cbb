"""Issue 31's speed rows in one process: convlab next to PyTorch, and convlab with this round's
switchable changes off (the previous formulation), interleaved.

Run: ``python benchmarks/rnn_ab.py [--threads 1 2] [--repeats 21] [--quick] [--only TEXT]``.
Each row is one case of ``rnn_cases.py`` (2-layer LSTM 200 / 650 forward + backward, the
word LM's training step); its arms alternate (A B C C B A ...) through
``timing.interleaved``, medians kept, so drift on a shared machine hits every arm alike.
Arms:

* ``convlab``: as shipped;
* ``previous``: the recurrent layers' ``W_ih`` / ``W_hh`` gradients as two GEMMs and the
  cross-entropy through NumPy's log-softmax (the compiled time loops cannot be switched in
  one process: compare commits for those);
* ``torch``: PyTorch on the same threads.

Printed per row: the three medians, ``torch / convlab`` (> 1: convlab faster) and
``previous / convlab`` (what the switchable changes save).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _two_gemm_weight_grads(self: Any, dg: Any, x: Any, h0: Any) -> tuple[Any, Any]:
    """The previous formulation: ``W_ih`` and ``W_hh`` gradients as two GEMMs."""
    be = self.backend
    rows = x.shape[0] * x.shape[1]
    dg2 = dg.reshape(rows, -1)
    dw_ih = be.matmul(dg2, x.reshape(rows, -1), trans_a=True)
    prev = self._previous_states(h0).reshape(rows, -1)
    return dw_ih, be.matmul(dg2, prev, trans_a=True)


@contextmanager
def _previous() -> Iterator[None]:
    from convlab._ops import loss as loss_ops
    from convlab._ops import rnn as rnn_ops

    saved = rnn_ops._Recurrent._weight_grads, loss_ops._fused_xent
    rnn_ops._Recurrent._weight_grads = _two_gemm_weight_grads  # type: ignore[method-assign]
    loss_ops._fused_xent = lambda backend, logits: False
    try:
        yield
    finally:
        rnn_ops._Recurrent._weight_grads, loss_ops._fused_xent = saved


def _in_previous(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with _previous():
            return fn()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="skip the hidden-650 rows")
    parser.add_argument("--only", default="", help="rows whose name contains this text")
    args = parser.parse_args()
    # every library's thread pools sized before any of them loads (as run.py does)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(max(args.threads))
    import convlab
    from cases import _torch
    from rnn_cases import rnn_cases
    from timing import interleaved

    torch = _torch()
    print(f"convlab {convlab.__version__}, torch {torch.__version__ if torch else '-'}")
    cases = [case for case in rnn_cases(args.quick) if args.only in case.name]
    for threads in args.threads:
        convlab.set_num_threads(threads)
        if torch:
            torch.set_num_threads(threads)
        print(f"\n{threads} thread(s), {convlab.get_backend('cpu').describe()}")
        for case in cases:
            medians = interleaved(
                {
                    "convlab": case.convlab,
                    "previous": _in_previous(case.convlab),
                    "torch": case.torch,
                },
                args.repeats,
            )
            ours, old, theirs = medians["convlab"], medians["previous"], medians["torch"]
            assert ours is not None and old is not None
            vs_torch = f"{theirs / ours:5.2f}x" if theirs else "  -  "
            print(
                f"{case.name:64s} convlab {ours * 1e3:8.2f} ms  previous {old * 1e3:8.2f} ms  "
                f"torch {theirs * 1e3 if theirs else float('nan'):8.2f} ms  "
                f"torch/convlab {vs_torch}  previous/convlab {old / ours:5.2f}x"
            )


if __name__ == "__main__":
    main()
