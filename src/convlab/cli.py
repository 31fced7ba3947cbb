"""The ``convlab`` command line."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convlab", description="Convolutional networks on convlab's own kernels.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("info", help="print version, build, ISA, threads and GPU status")
    chart = commands.add_parser("chart", help="stock-chart images and the chart CNN")
    chart_commands = chart.add_subparsers(dest="chart_command", metavar="COMMAND")
    render = chart_commands.add_parser("render", help="draw chart images from OHLCV data")
    render.add_argument("--data", default="default",
                        help="CSV / Parquet file or folder, or 'default' (S&P 500 and NASDAQ "
                             "1999-2018 from the arch package)")
    render.add_argument("--window", type=int, choices=(5, 20, 60), default=20)
    render.add_argument("--every", choices=("day", "week", "month", "quarter"), default="day")
    render.add_argument("--stride", type=int, default=1)
    render.add_argument("--horizon", type=int, default=None)
    render.add_argument("--no-ma", action="store_true", help="leave out the moving average")
    render.add_argument("--no-volume", action="store_true", help="leave out the volume bars")
    render.add_argument("--out", required=True, help="folder for the chart set")
    train = chart_commands.add_parser(
        "train", help="train the price-trend CNN ensemble and report how it trades",
        description="Train the I5/I20/I60 chart CNN (Jiang, Kelly & Xiu) with early stopping, "
                    "best-state checkpoints and --resume; writes metrics.json, PNG plots and "
                    "test predictions to --out.")
    train.add_argument("--data", default="default",
                       help="OHLCV CSV / Parquet file or folder, 'default' (S&P 500 + NASDAQ "
                            "1999-2018 bundled with arch), 'sp500', 'nasdaq' or jkx:DIR")
    train.add_argument("--window", type=int, default=None, help="5, 20 (default) or 60 days")
    train.add_argument("--horizon", type=int, default=None,
                       help="days of the forward return behind the label (default: window)")
    train.add_argument("--epochs", type=int, default=None,
                       help="maximum epochs per model (default 50; 3 on small data)")
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=float, default=1e-5)
    train.add_argument("--ensemble", type=int, default=None,
                       help="models averaged (default 5; 2 on small data)")
    train.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    train.add_argument("--threads", type=int, default=None)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--train-end", default=None,
                       help="last date whose labels may be trained on (default: leaves ~60 %% "
                            "of the labelled images for train + validation)")
    train.add_argument("--out", default=None, help="run folder (default runs/i<window>-<time>)")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out exactly where it stopped")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    predict = chart_commands.add_parser("predict",
                                        help="write (ticker, date, p_up) with a trained run")
    predict.add_argument("--model", required=True, help="a folder written by 'chart train'")
    predict.add_argument("--data", default="default")
    predict.add_argument("--out", default="predictions.csv")
    predict.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    top_train = commands.add_parser("train", help="train a model on an image dataset")
    datasets = top_train.add_subparsers(dest="dataset", metavar="DATASET")
    cifar = datasets.add_parser(
        "cifar10", help="ResNet9 on CIFAR-10 (files you downloaded; nothing is fetched)",
        description="Train ResNet9 on CIFAR-10 with augmentation, per-epoch test metrics, "
                    "checkpoints (--resume) and a learning-curve PNG in --out.")
    cifar.add_argument("--data", required=True,
                       help="folder with cifar-10-batches-bin or cifar-10-batches-py")
    cifar.add_argument("--model", choices=("resnet9", "resnet9-standard"), default="resnet9",
                       help="resnet9: needle hw4's (431,946 parameters); resnet9-standard: "
                            "cifar10-fast's 64-128-256-512")
    cifar.add_argument("--epochs", type=int, default=10)
    cifar.add_argument("--batch-size", type=int, default=128)
    cifar.add_argument("--lr", type=float, default=1e-3)
    cifar.add_argument("--weight-decay", type=float, default=5e-4)
    cifar.add_argument("--no-augment", action="store_true",
                       help="no random crops and flips")
    cifar.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    cifar.add_argument("--threads", type=int, default=None)
    cifar.add_argument("--seed", type=int, default=0)
    cifar.add_argument("--limit", type=int, default=None,
                       help="use only the first N training images (and N/5 test images)")
    cifar.add_argument("--out", default=None, help="run folder (default runs/cifar10-<time>)")
    cifar.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out")
    cifar.add_argument("--quiet", action="store_true", help="no progress output")
    show = chart_commands.add_parser("show", help="write a PNG grid of sample charts")
    show.add_argument("--charts", required=True, help="a folder written by 'chart render'")
    show.add_argument("--out", default="charts.png")
    show.add_argument("--count", type=int, default=16)
    show.add_argument("--seed", type=int, default=0)
    return parser


def _chart(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from convlab import data
    if args.chart_command == "render":
        frame = data.load_default_ohlcv() if args.data == "default" else \
            data.load_ohlcv(args.data)
        charts = data.render_charts(frame, args.window, ma=not args.no_ma,
                                    volume=not args.no_volume, every=args.every,
                                    stride=args.stride, horizon=args.horizon)
        charts.save(args.out)
        print(f"{charts} -> {args.out}")
        return 0
    if args.chart_command == "train":
        return _chart_train(args)
    if args.chart_command == "predict":
        from convlab.training.chart import predict
        path = predict(args.model, args.data, args.out, device=args.device)
        print(f"wrote {path}")
        return 0
    if args.chart_command == "show":
        from convlab.data.preview import save_grid
        path = save_grid(data.ChartSet.load(args.charts), args.out, args.count, seed=args.seed)
        print(f"wrote {path}")
        return 0
    parser.print_help(sys.stderr)
    return 2


def _run_training(args: argparse.Namespace, command: str, default_name: str, start: Any,
                  resume_command: str, outputs: str) -> int:
    """What the training commands share: the default run folder, ``--resume`` needing
    ``--out``, and Ctrl-C pointing at how to resume. ``start()`` runs the job."""
    if args.out is None:
        if args.resume:
            print(f"convlab {command}: --resume needs --out (the run folder to continue)",
                  file=sys.stderr)
            return 2
        args.out = f"runs/{default_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        start()
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last finished epoch is saved in {args.out}; continue with "
              f"{resume_command} --out {args.out} --resume", file=sys.stderr)
        return 130
    print(f"{outputs} in {args.out}")
    return 0


def _chart_train(args: argparse.Namespace) -> int:
    from convlab.training.chart import ChartTrainConfig, train
    window = args.window if args.window is not None else 20
    config = ChartTrainConfig(
        data=args.data, window=window,
        horizon=args.horizon if args.horizon is not None else window, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, ensemble=args.ensemble, device=args.device,
        seed=args.seed, train_end=args.train_end)
    return _run_training(
        args, "chart train", f"i{window}",
        lambda: train(config, args.out, resume=args.resume, quiet=args.quiet,
                      threads=args.threads, window_given=args.window is not None),
        "convlab chart train", "report, plots and predictions")


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from convlab.training.cifar import CifarTrainConfig, train_cifar10
    if args.dataset != "cifar10":
        parser.parse_args(["train", "--help"])
    config = CifarTrainConfig(
        data=args.data, model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, augment=not args.no_augment,
        device=args.device, seed=args.seed, limit=args.limit)
    return _run_training(
        args, "train", "cifar10",
        lambda: train_cifar10(config, args.out, resume=args.resume, quiet=args.quiet,
                              threads=args.threads),
        f"convlab train cifar10 --data {args.data}", "metrics, checkpoints and learning curves")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        from convlab import show_config
        show_config()
        return 0
    commands = {"chart": _chart, "train": _train}
    if args.command in commands:
        try:
            return commands[args.command](args, parser)
        except (ValueError, OSError, ImportError) as err:
            # user errors (bad arguments, files, checkpoints): one line, no traceback
            print(f"convlab {args.command}: {err}", file=sys.stderr)
            return 2
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
