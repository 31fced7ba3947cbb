"""The ``convlab`` command line."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

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
    if args.chart_command == "show":
        from convlab.data.preview import save_grid
        path = save_grid(data.ChartSet.load(args.charts), args.out, args.count, seed=args.seed)
        print(f"wrote {path}")
        return 0
    parser.print_help(sys.stderr)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        from convlab import show_config
        show_config()
        return 0
    if args.command == "chart":
        try:
            return _chart(args, parser)
        except (ValueError, OSError, ImportError) as err:
            print(f"convlab chart: {err}", file=sys.stderr)
            return 1
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
