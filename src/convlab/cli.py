"""The ``convlab`` command line.

Every failure is reported one way. A user error -- a bad option value, a missing, malformed or
crafted file, an output that would replace something that is not ours -- is one line on
stderr, ``convlab <command>: error: <what>``, and exit status 2. That covers the option parser
and the library's documented user-error types (:data:`USER_ERRORS`). Ctrl-C exits with 130 and
says what was saved. Any other exception is a bug in convlab and keeps its traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from convlab.backend import BackendUnavailableError
from convlab.training.fields import MAX_INT, MAX_SEED, UserError, integer_range
from convlab.training.runs import Interrupted, one_line

__all__ = ["main", "USER_ERRORS"]

#: What the library raises for bad input, and so what the command line reports in one line:
#: ValueError and its subclasses (UserError, CheckpointError, OHLCVError, DatasetFormatError,
#: ChartSetError, the optimizer-state errors), OSError (FileNotFoundError, FileExistsError,
#: PermissionError, a full disk), ImportError (a missing optional dependency such as pandas or
#: Pillow) and BackendUnavailableError (``--device gpu`` on a machine without one). TypeError
#: is not among them: every value that reaches the library from the command line or a run
#: folder is checked first, so a TypeError is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, ImportError, BackendUnavailableError)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# -- option types: each value is checked where it is parsed, so the error names the option --


def _whole(minimum: int, maximum: int = MAX_INT) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"expected {integer_range(minimum, maximum)}, got {text!r}"
            )
        return value

    return parse


def _number(minimum: float, above: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(
                f"expected a finite number {'>' if above else '>='} {minimum:g}, got {text!r}"
            )
        return value

    return parse


def _threads(text: str) -> int:
    # the most set_num_threads takes (4 x the usable CPUs): beyond it OpenMP fails outright
    from convlab._settings import max_threads

    return _whole(1, max_threads())(text)


_COUNT, _SEED = _whole(1), _whole(0, MAX_SEED)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convlab", description="Convolutional networks on convlab's own kernels.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = commands.add_parser("info", help="print version, build, ISA, threads and GPU status")
    info.set_defaults(run=_info)
    chart = commands.add_parser("chart", help="stock-chart images and the chart CNN")
    chart_commands = chart.add_subparsers(dest="chart_command", metavar="COMMAND")
    render = chart_commands.add_parser("render", help="draw chart images from OHLCV data")
    render.set_defaults(run=_render)
    render.add_argument(
        "--data",
        default="default",
        help="CSV / Parquet file or folder, crsp:FILE (a WRDS CRSP daily export), or "
        "'default' (S&P 500 and NASDAQ 1999-2018 from the arch package)",
    )
    render.add_argument("--window", type=int, choices=(5, 20, 60), default=20)
    render.add_argument("--every", choices=("day", "week", "month", "quarter"), default="day")
    render.add_argument("--stride", type=_COUNT, default=1)
    render.add_argument("--horizon", type=_COUNT, default=None)
    render.add_argument(
        "--label",
        choices=("days", "period"),
        default="days",
        help="label by the return over --horizon trading days (default) or over the "
        "calendar period after each image (needs --every week, month or quarter)",
    )
    render.add_argument("--no-ma", action="store_true", help="leave out the moving average")
    render.add_argument("--no-volume", action="store_true", help="leave out the volume bars")
    render.add_argument("--out", required=True, help="folder for the chart set")
    render.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a chart set already in --out (a folder holding anything "
        "else is never touched)",
    )
    train = chart_commands.add_parser(
        "train",
        help="train the price-trend CNN ensemble and report how it trades",
        description="Train the I5/I20/I60 chart CNN (Jiang, Kelly & Xiu) with early stopping, "
        "best-state checkpoints and --resume; writes metrics.json, PNG plots and "
        "test predictions to --out.",
    )
    train.set_defaults(run=_chart_train)
    train.add_argument(
        "--data",
        default="default",
        help="OHLCV CSV / Parquet file or folder, crsp:FILE (a WRDS CRSP daily export), "
        "'default' (S&P 500 + NASDAQ 1999-2018 bundled with arch), 'sp500', 'nasdaq' or jkx:DIR",
    )
    train.add_argument(
        "--window", type=int, choices=(5, 20, 60), default=None, help="5, 20 (default) or 60 days"
    )
    train.add_argument(
        "--horizon",
        type=_COUNT,
        default=None,
        help="days of the forward return behind the label (default: window)",
    )
    train.add_argument(
        "--every",
        choices=("day", "week", "month", "quarter"),
        default=None,
        help="image end dates (default: the paper's week / month / quarter ends for 5 / 20 / "
        "60-day horizons on data with 10+ instruments, every day otherwise)",
    )
    train.add_argument(
        "--label",
        choices=("days", "period"),
        default="days",
        help="label by the return over --horizon trading days (default) or over the "
        "calendar period after each image",
    )
    train.add_argument(
        "--epochs",
        type=_COUNT,
        default=None,
        help="maximum epochs per model (default 50; 3 on small data)",
    )
    train.add_argument("--batch-size", type=_COUNT, default=128)
    train.add_argument("--lr", type=_number(0, above=True), default=1e-5)
    train.add_argument(
        "--ensemble", type=_COUNT, default=None, help="models averaged (default 5; 2 on small data)"
    )
    train.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    train.add_argument("--threads", type=_threads, default=None)
    train.add_argument("--seed", type=_SEED, default=0)
    train.add_argument(
        "--train-end",
        default=None,
        help="last date (YYYY-MM-DD) whose labels may be trained on (default: "
        "leaves ~60 %% of the labelled images for train + validation)",
    )
    train.add_argument(
        "--out", default=None, help="run folder, new or empty (default runs/i<window>-<time>)"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out exactly where it stopped",
    )
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="float32 matrix products in full precision (fp32) or through bfloat16 (bf16)",
    )
    train.add_argument(
        "--distributed",
        action="store_true",
        help="train data-parallel over MPI even on one rank (under mpiexec -n N it does anyway)",
    )
    predict = chart_commands.add_parser(
        "predict", help="write (ticker, date, p_up) with a trained run"
    )
    predict.set_defaults(run=_predict)
    predict.add_argument("--model", required=True, help="a folder written by 'chart train'")
    predict.add_argument("--data", default="default")
    predict.add_argument("--out", default="predictions.csv")
    predict.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    predict.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    predict.add_argument(
        "--distributed", action="store_true", help="share the charts among MPI ranks"
    )
    explain = chart_commands.add_parser(
        "explain", help="Grad-CAM heat maps of a trained run's most confident predictions"
    )
    explain.set_defaults(run=_explain)
    explain.add_argument("--model", required=True, help="a folder written by 'chart train'")
    explain.add_argument("--data", default="default")
    explain.add_argument("--n", type=_COUNT, default=16, help="images per up / down grid")
    explain.add_argument(
        "--out", default=None, help="folder for the PNGs (default: MODEL/explain, in the report)"
    )
    explain.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    explain.add_argument("--quiet", action="store_true", help="no progress output")
    top_train = commands.add_parser("train", help="train a model on an image dataset")
    datasets = top_train.add_subparsers(dest="dataset", metavar="DATASET")
    cifar = datasets.add_parser(
        "cifar10",
        help="ResNet9 on CIFAR-10 (files you downloaded; nothing is fetched)",
        description="Train ResNet9 on CIFAR-10 with augmentation, per-epoch test metrics, "
        "checkpoints (--resume) and a learning-curve PNG in --out.",
    )
    cifar.set_defaults(run=_cifar_train)
    cifar.add_argument(
        "--data", required=True, help="folder with cifar-10-batches-bin or cifar-10-batches-py"
    )
    cifar.add_argument(
        "--model",
        choices=("resnet9", "resnet9-standard"),
        default="resnet9",
        help="resnet9: needle hw4's (431,946 parameters); resnet9-standard: "
        "cifar10-fast's 64-128-256-512",
    )
    cifar.add_argument("--epochs", type=_COUNT, default=10)
    cifar.add_argument("--batch-size", type=_COUNT, default=128)
    cifar.add_argument("--lr", type=_number(0, above=True), default=1e-3)
    cifar.add_argument("--weight-decay", type=_number(0, above=False), default=5e-4)
    cifar.add_argument("--no-augment", action="store_true", help="no random crops and flips")
    cifar.add_argument(
        "--download",
        action="store_true",
        help="download CIFAR-10 into --data first if it is not there (MD5-checked)",
    )
    cifar.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    cifar.add_argument("--threads", type=_threads, default=None)
    cifar.add_argument("--seed", type=_SEED, default=0)
    cifar.add_argument(
        "--limit",
        type=_COUNT,
        default=None,
        help="use only the first N training images (and N/5 test images)",
    )
    cifar.add_argument(
        "--out", default=None, help="run folder, new or empty (default runs/cifar10-<time>)"
    )
    cifar.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in --out"
    )
    cifar.add_argument("--quiet", action="store_true", help="no progress output")
    _add_ptb_commands(commands, datasets)
    show = chart_commands.add_parser("show", help="write a PNG grid of sample charts")
    show.set_defaults(run=_show)
    show.add_argument("--charts", required=True, help="a folder written by 'chart render'")
    show.add_argument("--out", default="charts.png")
    show.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    show.add_argument("--count", type=_COUNT, default=16)
    show.add_argument("--seed", type=_SEED, default=0)
    return parser


# -- the commands --------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    from convlab import show_config

    show_config()
    return 0


def _read_ohlcv(source: str) -> Any:
    from convlab import data

    if source == "default":
        return data.load_default_ohlcv()
    if source.startswith("crsp:"):  # a WRDS CRSP daily export (convlab.finance.crsp)
        from convlab.training.evaluate import daily_frame

        return daily_frame(source)
    try:
        return data.load_ohlcv(source)
    except (data.OHLCVError, FileNotFoundError) as err:
        raise UserError(f"--data: {err}") from None


def _render_horizon(args: argparse.Namespace) -> int | str:
    from convlab.finance.sampling import label_horizon

    horizon = args.horizon if args.horizon is not None else args.window
    try:
        return label_horizon(horizon, args.every, args.label)
    except ValueError as err:
        raise UserError(f"--label: {err}") from None


def _render(args: argparse.Namespace) -> int:
    from convlab import data

    charts = data.render_charts(
        _read_ohlcv(args.data),
        args.window,
        ma=not args.no_ma,
        volume=not args.no_volume,
        every=args.every,
        stride=args.stride,
        horizon=_render_horizon(args),
    )
    try:
        charts.save(args.out, overwrite=args.overwrite)
    except FileExistsError as err:  # it names --overwrite where that would help
        raise UserError(f"--out: {one_line(err)}") from None
    print(f"{charts} -> {args.out}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from convlab import data
    from convlab.data.preview import save_grid

    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out: {out} is a folder (expected a PNG file name)")
    # checked before the work; the PNG writer replaces files, so a file that appears at this
    # very name while the grid is drawn would be replaced (a window of milliseconds)
    if not args.overwrite and os.path.lexists(out):
        raise UserError(f"--out: {out} already exists; pass --overwrite to replace it")
    try:
        charts = data.ChartSet.load(args.charts)
    except (ValueError, FileNotFoundError) as err:
        raise UserError(f"--charts: {one_line(err)}") from None
    path = save_grid(charts, out, args.count, seed=args.seed)
    print(f"wrote {path}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from convlab.training.chart import predict

    path = predict(
        args.model,
        args.data,
        args.out,
        device=args.device,
        overwrite=args.overwrite,
        distributed=True if args.distributed else None,
    )
    if _rank_zero():  # under mpiexec, once
        print(f"wrote {path}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from convlab.explain.job import explain

    folder = explain(
        args.model, args.data, args.out, n=args.n, device=args.device, quiet=args.quiet
    )
    print(f"wrote Grad-CAM pictures to {folder}")
    return 0


def _run_training(
    args: argparse.Namespace, default_name: str, start: Callable[[], Any], outputs: str
) -> int:
    """What the training commands share: the default run folder and ``--resume`` needing
    ``--out``. ``start()`` runs the job."""
    if args.out is None:
        if args.resume:
            raise UserError("--resume needs --out (the run folder to continue)")
        args.out = f"runs/{default_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    start()
    if _rank_zero():  # under mpiexec, once
        print(f"{outputs} in {args.out}")
    return 0


def _rank_zero() -> bool:
    """Whether this process prints a job's last line: not a rank > 0 of an MPI job."""
    from convlab import distributed

    return not distributed.is_initialized() or distributed.get_rank() == 0


def _chart_train(args: argparse.Namespace) -> int:
    from convlab.training.chart import ChartTrainConfig, train

    window = args.window if args.window is not None else 20
    config = ChartTrainConfig(
        data=args.data,
        window=window,
        horizon=args.horizon if args.horizon is not None else window,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        ensemble=args.ensemble,
        device=args.device,
        seed=args.seed,
        train_end=args.train_end,
        precision=args.precision,
        every=args.every,
        label=args.label,
    )
    args.resume_command = "convlab chart train"
    return _run_training(
        args,
        f"i{window}",
        lambda: train(
            config,
            args.out,
            resume=args.resume,
            quiet=args.quiet,
            threads=args.threads,
            window_given=args.window is not None,
            distributed=True if args.distributed else None,
        ),
        "report, plots and predictions",
    )


def _cifar_train(args: argparse.Namespace) -> int:
    from convlab.training.cifar import CifarTrainConfig, train_cifar10

    config = CifarTrainConfig(
        data=args.data,
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        augment=not args.no_augment,
        device=args.device,
        seed=args.seed,
        limit=args.limit,
    )
    args.resume_command = f"convlab train cifar10 --data {args.data}"
    return _run_training(
        args,
        "cifar10",
        lambda: train_cifar10(
            config,
            args.out,
            resume=args.resume,
            quiet=args.quiet,
            threads=args.threads,
            download=args.download,
        ),
        "metrics, checkpoints and learning curves",
    )


def _add_ptb_commands(commands: Any, datasets: Any) -> None:
    """``convlab train ptb`` and ``convlab generate`` (the word-level language model)."""
    ptb = datasets.add_parser(
        "ptb",
        help="a word-level LSTM / GRU / RNN language model (Penn Treebank format; "
        "a bundled corpus by default)",
        description="Train a word-level language model with truncated back-propagation "
        "through time; writes train / validation / test perplexity per epoch (metrics.json), "
        "learning curves, checkpoints (--resume) and the vocabulary to --out.",
    )
    ptb.set_defaults(run=_ptb_train)
    # no defaults here: a new run takes PTBTrainConfig's, --resume the run's own
    ptb.add_argument(
        "--data",
        help="folder with ptb.train.txt / ptb.valid.txt / ptb.test.txt (or train.txt ...), "
        "or 'default' (Python's documentation text, built offline; the default)",
    )
    ptb.add_argument("--model", choices=("lstm", "gru", "rnn"), help="default lstm")
    ptb.add_argument("--embedding", type=_COUNT, help="word vector size (default 200)")
    ptb.add_argument("--hidden", type=_COUNT, help="recurrent state size (default 200)")
    ptb.add_argument("--layers", type=_COUNT, help="default 2")
    ptb.add_argument("--bptt", type=_COUNT, help="steps of back-propagation (default 35)")
    ptb.add_argument("--batch-size", type=_COUNT, help="default 20")
    ptb.add_argument("--epochs", type=_COUNT, help="default 6; on --resume, more trains on")
    ptb.add_argument("--optimizer", choices=("adam", "sgd"), help="default adam")
    ptb.add_argument(
        "--lr",
        type=_number(0, above=True),
        help="learning rate (default 1e-2 for Adam, 20 for SGD), divided by 4 after an "
        "epoch without a better validation loss",
    )
    ptb.add_argument(
        "--clip", type=_number(0, above=False), help="gradient norm limit (default 0.25; 0: off)"
    )
    ptb.add_argument("--dropout", type=_number(0, above=False), help="default 0.2")
    ptb.add_argument(
        "--tied", action="store_true", default=None, help="share embedding and decoder weights"
    )
    ptb.add_argument("--max-lines", type=_COUNT, help="read only the first N lines of each file")
    ptb.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    ptb.add_argument("--threads", type=_threads, default=None)
    ptb.add_argument("--seed", type=_SEED, help="default 0")
    ptb.add_argument(
        "--out", default=None, help="run folder, new or empty (default runs/ptb-<time>)"
    )
    ptb.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out (a larger --epochs trains on)",
    )
    ptb.add_argument("--quiet", action="store_true", help="no progress output")
    generate = commands.add_parser(
        "generate", help="sample text from a trained 'train ptb' language model"
    )
    generate.set_defaults(run=_generate)
    generate.add_argument("--model", required=True, help="a folder written by 'train ptb'")
    generate.add_argument("--words", type=_COUNT, default=100)
    generate.add_argument(
        "--temperature",
        type=_number(0, above=True),
        default=1.0,
        help="below 1: likelier words; above 1: more varied",
    )
    generate.add_argument("--seed", type=_SEED, default=0)
    generate.add_argument("--device", choices=("cpu", "gpu"), default="cpu")


def _ptb_train(args: argparse.Namespace) -> int:
    from convlab.training.ptb import OPTIONS, ptb_config, train_ptb

    given = {k: getattr(args, k) for k in OPTIONS if getattr(args, k) is not None}
    args.resume_command = "convlab train ptb"
    return _run_training(
        args,
        "ptb",
        lambda: train_ptb(
            ptb_config(given, args.out, args.resume),
            args.out,
            resume=args.resume,
            quiet=args.quiet,
            threads=args.threads,
        ),
        "metrics, checkpoints, vocabulary and learning curves",
    )


def _generate(args: argparse.Namespace) -> int:
    from convlab.training.ptb import generate

    generate(
        args.model,
        words=args.words,
        temperature=args.temperature,
        seed=args.seed,
        device=args.device,
        stream=sys.stdout,
    )
    return 0


def _interrupted(args: argparse.Namespace, stop: Interrupted) -> str:
    """What Ctrl-C in a training job leaves behind, truthfully."""
    resume = f"{args.resume_command} --out {args.out} --resume"
    if stop.saved:
        return (
            f"interrupted: {args.out} holds the checkpoint of {stop.saved}, the last "
            f"finished epoch; continue with {resume}"
        )
    if stop.started:
        return (
            f"interrupted: no epoch had finished, so there is no checkpoint yet; {resume} "
            f"starts the run over"
        )
    return "interrupted before the run started; nothing was written"


# -- main ----------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> Any | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _leaf(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)command ``args`` was parsed by; a usage error (exit 2) when the
    command line stops before naming one."""
    action = _subcommands(parser)
    while action is not None:
        name = getattr(args, action.dest)
        if name is None:
            parser.error(
                f"missing {action.metavar}: one of {', '.join(action.choices)}; "
                f"{parser.format_usage().strip()}"
            )
        parser = action.choices[name]
        action = _subcommands(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for a user error, 130 on Ctrl-C)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        prog = _leaf(parser, args).prog
    except SystemExit as stop:  # --help, or a usage error already reported in one line
        return 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 2
    try:
        return args.run(args)
    except Interrupted as stop:
        print(f"\n{prog}: {_interrupted(args, stop)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
