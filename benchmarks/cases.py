"""Benchmark cases: convlab next to PyTorch (CPU) and NumPy on the same inputs.

Shapes come from the chart CNN (Jiang, Kelly & Xiu): batch 128, 5x3 convolutions with padding
(2, 1) and (2, 1) max-pooling; the first layer of I20 / I60 has stride (3, 1) and dilation
(2, 1) / (3, 1) (chart_images.md section 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

import convlab

BATCH = 128


@dataclass
class Case:
    """One benchmark row."""

    group: str
    name: str
    convlab: Callable[[], object]
    torch: Callable[[], object] | None
    numpy: Callable[[], object] | None
    work: float  # flops (or bytes moved, for memory-bound cases)
    unit: str  # "GFLOP/s" or "GB/s"
    # memory-bound cases: the same bytes moved and nothing else, timed in the same run; the
    # row then says what share of that speed convlab reaches
    floor: Callable[[], object] | None = None


@dataclass(frozen=True)
class ConvLayer:
    model: str
    index: int
    c_in: int
    c_out: int
    height: int  # input feature-map height (width is the model's image width)
    width: int
    stride: tuple = (1, 1)
    padding: tuple = (2, 1)
    dilation: tuple = (1, 1)

    @property
    def name(self) -> str:
        return f"{self.model} layer {self.index}"

    def out_hw(self):
        return tuple(
            (size + 2 * p - d * (k - 1) - 1) // s + 1
            for size, k, s, p, d in zip(
                (self.height, self.width), (5, 3), self.stride, self.padding, self.dilation
            )
        )


# The chart CNN's convolutions as ChartCNN builds them (chart_images.md section 5): padding
# (2, 1) everywhere, 2x1 max-pooling in ceil mode between layers.
CHART_LAYERS = [
    ConvLayer("I5", 1, 1, 64, 32, 15),
    ConvLayer("I5", 2, 64, 128, 16, 15),
    ConvLayer("I20", 1, 1, 64, 64, 60, (3, 1), (2, 1), (2, 1)),
    ConvLayer("I20", 2, 64, 128, 10, 60),
    ConvLayer("I20", 3, 128, 256, 5, 60),
    ConvLayer("I60", 1, 1, 64, 96, 180, (3, 1), (2, 1), (3, 1)),
    ConvLayer("I60", 2, 64, 128, 15, 180),
    ConvLayer("I60", 3, 128, 256, 8, 180),
    ConvLayer("I60", 4, 256, 512, 4, 180),
]
QUICK_LAYERS = {("I20", 1), ("I20", 2), ("I20", 3), ("I5", 2), ("I60", 4)}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---------------------------------------------------------------------------- NumPy peers
def numpy_im2col(x, kernel, stride, padding, dilation):
    """The seed notebook's im2col: an as_strided view reshaped (copied) to (N*OH*OW, C*KH*KW)."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    n, c, h, w = xp.shape
    oh = (h - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (w - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    s = xp.strides
    view = as_strided(
        xp,
        (n, oh, ow, c, kernel[0], kernel[1]),
        (s[0], s[2] * stride[0], s[3] * stride[1], s[1], s[2] * dilation[0], s[3] * dilation[1]),
    )
    return view.reshape(n * oh * ow, -1), (oh, ow)


def numpy_conv_forward(x, w, stride, padding, dilation):
    cols, (oh, ow) = numpy_im2col(x, w.shape[2:], stride, padding, dilation)
    out = cols @ w.reshape(w.shape[0], -1).T
    return np.ascontiguousarray(out.reshape(x.shape[0], oh, ow, -1).transpose(0, 3, 1, 2))


def numpy_conv_backward(x, w, dy, stride, padding, dilation, need_input_grad=True):
    cols, (oh, ow) = numpy_im2col(x, w.shape[2:], stride, padding, dilation)
    dy_mat = dy.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])
    dw = (dy_mat.T @ cols).reshape(w.shape)
    db = dy_mat.sum(axis=0)
    if not need_input_grad:
        return dw, db
    n, c, h, wd = x.shape
    kh_, kw_ = w.shape[2:]
    dcols = (dy_mat @ w.reshape(w.shape[0], -1)).reshape(n, oh, ow, c, kh_, kw_)
    dxp = np.zeros((n, c, h + 2 * padding[0], wd + 2 * padding[1]), x.dtype)
    for kh in range(kh_):
        for kw in range(kw_):
            r0, c0 = kh * dilation[0], kw * dilation[1]
            dxp[
                :,
                :,
                r0 : r0 + stride[0] * (oh - 1) + 1 : stride[0],
                c0 : c0 + stride[1] * (ow - 1) + 1 : stride[1],
            ] += dcols[..., kh, kw].transpose(0, 3, 1, 2)
    return dxp[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + wd], dw, db


def numpy_max_pool(x, kernel):
    """Non-overlapping max pooling by reshaping, with argmax, forward and backward."""
    n, c, h, w = x.shape
    oh, ow = h // kernel[0], w // kernel[1]
    blocks = x[:, :, : oh * kernel[0], : ow * kernel[1]].reshape(n, c, oh, kernel[0], ow, kernel[1])
    blocks = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, -1)
    arg = blocks.argmax(axis=-1)
    y = np.take_along_axis(blocks, arg[..., None], axis=-1)[..., 0]
    return y, arg


def numpy_max_pool_backward(dy, arg, x_shape, kernel):
    n, c, h, w = x_shape
    oh, ow = dy.shape[2:]
    grads = np.zeros((n, c, oh, ow, kernel[0] * kernel[1]), dy.dtype)
    np.put_along_axis(grads, arg[..., None], dy[..., None], axis=-1)
    dx = np.zeros(x_shape, dy.dtype)
    dx[:, :, : oh * kernel[0], : ow * kernel[1]] = (
        grads.reshape(n, c, oh, ow, kernel[0], kernel[1])
        .transpose(0, 1, 2, 4, 3, 5)
        .reshape(n, c, oh * kernel[0], ow * kernel[1])
    )
    return dx


# ---------------------------------------------------------------------------- case builders
def _matmul_case(group: str, name: str, m: int, k: int, n: int, rng) -> Case:
    """C = A @ B into a preallocated C, for every contender."""
    torch = _torch()
    cpu = convlab.get_backend("cpu")
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    theirs = None
    if torch:
        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.empty(m, n)

        def theirs():
            return torch.mm(ta, tb, out=tout)

    return Case(
        group,
        name,
        lambda: cpu.matmul(a, b, out=out),
        theirs,
        lambda: np.matmul(a, b, out=out),
        2.0 * m * k * n,
        "GFLOP/s",
    )


def gemm_cases(quick: bool) -> list[Case]:
    rng = np.random.default_rng(0)
    sizes = [256, 1024] if quick else [256, 512, 1024, 2048]
    cases = [_matmul_case("gemm", f"SGEMM {size}^3", size, size, size, rng) for size in sizes]
    # The chart CNN's convolutions as (pixels x taps) @ (taps x channels), as an NHWC im2col
    # implementation would run them.
    for layer, k, n_out in [
        (CHART_LAYERS[2], 15, 64),
        (CHART_LAYERS[3], 960, 128),
        (CHART_LAYERS[4], 1920, 256),
    ]:
        oh, ow = layer.out_hw()
        m = BATCH * oh * ow
        cases.append(_matmul_case("skinny gemm", f"{m}x{k} @ {k}x{n_out}", m, k, n_out, rng))
    return cases


def conv_cases(quick: bool) -> list[Case]:
    torch = _torch()
    cpu = convlab.get_backend("cpu")
    rng = np.random.default_rng(1)
    cases = []
    for layer in CHART_LAYERS:
        if quick and (layer.model, layer.index) not in QUICK_LAYERS:
            continue
        x = rng.standard_normal((BATCH, layer.c_in, layer.height, layer.width), dtype=np.float32)
        if layer.c_in == 1:
            x = (x > 1.0).astype(np.float32)  # the first layer sees a 0/1 chart image
        w = (
            rng.standard_normal((layer.c_out, layer.c_in, 5, 3), dtype=np.float32)
            / np.sqrt(layer.c_in * 15)
        ).astype(np.float32)
        b = np.zeros(layer.c_out, np.float32)
        oh, ow = layer.out_hw()
        dy = rng.standard_normal((BATCH, layer.c_out, oh, ow), dtype=np.float32)
        geom = (layer.stride, layer.padding, layer.dilation)
        flops = 2.0 * BATCH * oh * ow * layer.c_out * layer.c_in * 15
        first = layer.c_in == 1  # the input of layer 1 needs no gradient
        big = BATCH * oh * ow * layer.c_in * 15 * 4 > 2**30  # NumPy's im2col would need > 1 GiB

        def ours_fwd(x=x, w=w, b=b, geom=geom):
            return cpu.conv2d_forward(x, w, b, *geom)

        def ours_fwd_bwd(x=x, w=w, b=b, dy=dy, geom=geom, first=first):
            cpu.conv2d_forward(x, w, b, *geom)
            if not first:
                cpu.conv2d_backward_data(dy, w, x.shape, *geom)
            cpu.conv2d_backward_weight(dy, x, w.shape, *geom)

        torch_fwd = torch_fwd_bwd = None
        if torch:
            tx, tw, tb, tdy = (torch.from_numpy(v) for v in (x, w, b, dy))

            def torch_fwd(tx=tx, tw=tw, tb=tb, geom=geom):
                with torch.no_grad():
                    return torch.nn.functional.conv2d(tx, tw, tb, *geom)

            def torch_fwd_bwd(tx=tx, tw=tw, tb=tb, tdy=tdy, geom=geom, first=first):
                xx = tx.detach().requires_grad_(not first)
                ww = tw.detach().requires_grad_()
                bb = tb.detach().requires_grad_()
                torch.nn.functional.conv2d(xx, ww, bb, *geom).backward(tdy)

        numpy_fwd = numpy_fwd_bwd = None
        if not big:

            def numpy_fwd(x=x, w=w, geom=geom):
                return numpy_conv_forward(x, w, *geom)

            def numpy_fwd_bwd(x=x, w=w, dy=dy, geom=geom, first=first):
                numpy_conv_forward(x, w, *geom)
                numpy_conv_backward(x, w, dy, *geom, need_input_grad=not first)

        cases.append(
            Case("conv", f"{layer.name} fwd", ours_fwd, torch_fwd, numpy_fwd, flops, "GFLOP/s")
        )
        label = "fwd+wgrad" if first else "fwd+bwd"
        cases.append(
            Case(
                "conv",
                f"{layer.name} {label}",
                ours_fwd_bwd,
                torch_fwd_bwd,
                numpy_fwd_bwd,
                flops * (2 if first else 3),
                "GFLOP/s",
            )
        )
    return cases


POOL_MAPS = [
    ("I20", 64, 27, 60),
    ("I20", 128, 13, 60),
    ("I20", 256, 6, 60),
    ("I5", 64, 32, 15),
    ("I5", 128, 16, 15),
    ("I60", 64, 36, 180),
    ("I60", 128, 18, 180),
    ("I60", 256, 9, 180),
    ("I60", 512, 4, 180),
]
QUICK_POOL_MAPS = {("I20", 64), ("I20", 128), ("I20", 256), ("I5", 64)}


def pool_cases(quick: bool) -> list[Case]:
    torch = _torch()
    cpu = convlab.get_backend("cpu")
    rng = np.random.default_rng(2)
    cases = []
    for model, channels, height, width in POOL_MAPS:
        if quick and (model, channels) not in QUICK_POOL_MAPS:
            continue
        x = rng.standard_normal((BATCH, channels, height, width), dtype=np.float32)
        for kernel in ((2, 1), (2, 2)):
            if kernel == (2, 2) and (quick and channels != 64 or width % 2):
                continue
            oh, ow = height // kernel[0], width // kernel[1]
            dy = rng.standard_normal((BATCH, channels, oh, ow), dtype=np.float32)

            def ours(x=x, dy=dy, kernel=kernel):
                _, arg = cpu.max_pool2d(x, kernel)
                cpu.max_pool2d_backward(dy, arg, x.shape, kernel)

            theirs = None
            if torch:
                tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)

                def theirs(tx=tx, tdy=tdy, kernel=kernel):
                    xx = tx.detach().requires_grad_()
                    torch.nn.functional.max_pool2d(xx, kernel).backward(tdy)

            def numpy_peer(x=x, dy=dy, kernel=kernel):
                _, arg = numpy_max_pool(x, kernel)
                numpy_max_pool_backward(dy, arg, x.shape, kernel)

            moved = 2 * x.nbytes + 2 * dy.nbytes  # read x, write dx; write y, read dy
            cases.append(
                Case(
                    "max-pool",
                    f"{kernel[0]}x{kernel[1]} fwd+bwd {channels}x{height}x{width} ({model})",
                    ours,
                    theirs,
                    numpy_peer,
                    moved,
                    "GB/s",
                )
            )
    return cases


def _small_cnn(lib):
    """A CIFAR-sized CNN small enough that per-op overhead dominates a training step."""
    n = lib.nn
    return n.Sequential(
        n.Conv2d(3, 16, 3, padding=1),
        n.BatchNorm2d(16),
        n.ReLU(),
        n.MaxPool2d(2),
        n.Conv2d(16, 32, 3, padding=1),
        n.BatchNorm2d(32),
        n.ReLU(),
        n.MaxPool2d(2),
        n.Flatten(),
        n.Dropout(0.25),
        n.Linear(32 * 8 * 8, 10),
    )


def _training_step(lib, model, x, y, lr=1e-3):
    """One training step of ``model`` in ``lib`` (convlab or torch): forward, cross-entropy,
    backward, Adam."""
    opt = lib.optim.Adam(model.parameters(), lr=lr)
    xt, yt = lib.tensor(x), lib.tensor(y)

    def step():
        opt.zero_grad()
        lib.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()

    return step


def train_cases(quick: bool) -> list[Case]:
    """One training step (forward, cross-entropy, backward, Adam) of a small CNN, batch 32."""
    torch = _torch()
    rng = np.random.default_rng(3)
    batch = 32
    x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, batch)

    ours = _training_step(convlab, _small_cnn(convlab), x, y)
    theirs = _training_step(torch, _small_cnn(torch), x, y) if torch else None
    return [
        Case(
            "train",
            f"small CNN step, batch {batch} (3x32x32, Adam)",
            ours,
            theirs,
            None,
            batch,
            "img/s",
        )
    ]


def chart_cases(quick: bool) -> list[Case]:
    """Rendering chart images from random-walk OHLCV tables (images per second, one thread:
    the renderer is vectorised NumPy)."""
    try:
        from convlab.data import render_charts
    except ImportError:
        return []
    frame = _random_walks(np.random.default_rng(4), 4 if quick else 20, 2000)
    cases = []
    for window in (5, 20, 60):
        count = len(render_charts(frame, window))
        cases.append(
            Case(
                "charts",
                f"render {window}-day charts ({count} images)",
                lambda window=window: render_charts(frame, window),
                None,
                None,
                count,
                "img/s",
            )
        )
    return cases


def _random_walks(rng, tickers: int, days: int):
    """An OHLCV frame of ``tickers`` random-walk price series of ``days`` trading days."""
    import pandas as pd

    frames = []
    for k in range(tickers):
        c = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, days)))
        o = c * np.exp(rng.normal(0, 0.01, days))
        frames.append(
            pd.DataFrame(
                {
                    "ticker": f"T{k}",
                    "date": pd.bdate_range("2001-01-01", periods=days),
                    "open": o,
                    "high": np.maximum(o, c) * 1.01,
                    "low": np.minimum(o, c) * 0.99,
                    "close": c,
                    "volume": rng.integers(1, 10**6, days).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _chart_images(window: int, count: int) -> np.ndarray:
    """Rendered chart images (uint8 0/1) of random-walk prices: realistic sparsity."""
    from convlab.data import render_charts

    frame = _random_walks(np.random.default_rng(window), 2, count + window + 5)
    return np.ascontiguousarray(render_charts(frame, window).images()[:count])


def binary_cases(quick: bool) -> list[Case]:
    """Layer 1 forward + weight gradient at batch 128 on chart images: convlab's table-lookup
    binary conv against PyTorch's dense conv of the same (float) images. The rate is the
    layer's compulsory traffic (writing its output, reading the output gradient) per second,
    next to the same traffic alone (the memory floor of ``yardsticks.c``, where it compiles):
    how far the table lookups are from the speed of memory."""
    try:
        images = {w: _chart_images(w, BATCH) for w in (5, 20, 60)}
    except ImportError:
        return []
    torch = _torch()
    import convlab.functional as F
    import yardsticks

    cpu = convlab.get_backend("cpu")
    cases = []
    for layer in [l for l in CHART_LAYERS if l.index == 1]:
        window = {"I5": 5, "I20": 20, "I60": 60}[layer.model]
        if quick and window != 20:
            continue
        x = images[window]
        rng = np.random.default_rng(layer.height)
        w = (rng.standard_normal((64, 1, 5, 3)) * 0.2).astype(np.float32)
        oh, ow = layer.out_hw()
        dy = rng.standard_normal((BATCH, 64, oh, ow), dtype=np.float32)
        geometry = (layer.stride, layer.padding, layer.dilation)

        args = (
            convlab.tensor(x),
            convlab.tensor(w, requires_grad=True),
            convlab.zeros(64, requires_grad=True),
            convlab.tensor(dy),
        )

        def ours(args=args, g=geometry):
            x, w, b, dy = args
            F.binary_conv2d(x, w, b, *g, mean=0.12, std=0.33).backward(dy)

        theirs = None
        if torch:
            targs = (
                torch.tensor(x, dtype=torch.float32),
                torch.tensor(w, requires_grad=True),
                torch.zeros(64, requires_grad=True),
                torch.tensor(dy),
            )

            def theirs(targs=targs, g=geometry):
                x, w, b, dy = targs
                torch.nn.functional.conv2d((x - 0.12) / 0.33, w, b, *g).backward(dy)

        out, flat, isa = np.empty(dy.size, np.float32), dy.reshape(-1), cpu.isa

        def floor(out=out, dy=flat, isa=isa):
            yardsticks.memory_floor(out, dy, convlab.get_num_threads(), isa)

        traffic = 2 * dy.nbytes  # the output written once, its gradient read once
        cases.append(
            Case(
                "binary",
                f"{layer.model} layer 1 fwd+wgrad, batch {BATCH}",
                ours,
                theirs,
                None,
                traffic,
                "GB/s",
                floor if yardsticks.available() else None,
            )
        )
    return cases


def _torch_chart_cnn(torch, window: int):
    tn = torch.nn
    blocks, stride, dilation = {5: (2, 1, 1), 20: (3, (3, 1), (2, 1)), 60: (4, (3, 1), (3, 1))}[
        window
    ]
    layers, c = [], 1
    for i in range(blocks):
        out = 64 * 2**i
        layers += [
            tn.Conv2d(c, out, (5, 3), stride if i == 0 else 1, (2, 1), dilation if i == 0 else 1),
            tn.BatchNorm2d(out),
            tn.LeakyReLU(0.01),
            tn.MaxPool2d((2, 1), ceil_mode=True),
        ]
        c = out
    fc_in = {5: 15_360, 20: 46_080, 60: 184_320}[window]
    return tn.Sequential(*layers, tn.Flatten(), tn.Dropout(0.5), tn.Linear(fc_in, 2))


def chart_cnn_cases(quick: bool) -> list[Case]:
    """One ChartCNN training step (forward, cross-entropy, backward, Adam) at batch 128:
    convlab on the 0/1 images (binary first layer), PyTorch on the same images as float."""
    try:
        from convlab.models import ChartCNN
    except ImportError:
        return []
    torch = _torch()
    cases = []
    for window in (20,) if quick else (5, 20, 60):
        x = _chart_images(window, BATCH)
        y = np.random.default_rng(window).integers(0, 2, BATCH)
        model = ChartCNN(window, input_mean=0.12, input_std=0.33)
        opt = convlab.optim.Adam(model.parameters(), lr=1e-5)
        xt, yt = convlab.tensor(x), convlab.tensor(y)

        def ours(model=model, opt=opt, xt=xt, yt=yt):
            opt.zero_grad()
            convlab.nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()

        theirs = None
        if torch:
            tmodel = _torch_chart_cnn(torch, window)
            topt = torch.optim.Adam(tmodel.parameters(), lr=1e-5)
            tx, ty = torch.tensor(x, dtype=torch.float32), torch.tensor(y)

            def theirs(tmodel=tmodel, topt=topt, tx=tx, ty=ty):
                topt.zero_grad()
                torch.nn.functional.cross_entropy(tmodel((tx - 0.12) / 0.33), ty).backward()
                topt.step()

        cases.append(
            Case(
                "chartcnn",
                f"I{window} training step, batch {BATCH}",
                ours,
                theirs,
                None,
                BATCH,
                "img/s",
            )
        )
    return cases


def _torch_resnet9(torch):
    """needle hw4's ResNet9 in PyTorch (the same layers as convlab.models.ResNet9('hw4'))."""
    tn = torch.nn

    def conv_bn(a, b, k=3, s=1):
        return tn.Sequential(tn.Conv2d(a, b, k, s, k // 2), tn.BatchNorm2d(b), tn.ReLU())

    class Residual(tn.Module):
        def __init__(self, *body):
            super().__init__()
            self.body = tn.Sequential(*body)

        def forward(self, x):
            return x + self.body(x)

    return tn.Sequential(
        conv_bn(3, 16, 7, 4),
        conv_bn(16, 32, 3, 2),
        Residual(conv_bn(32, 32), conv_bn(32, 32)),
        conv_bn(32, 64, 3, 2),
        conv_bn(64, 128, 3, 2),
        Residual(conv_bn(128, 128), conv_bn(128, 128)),
        tn.Flatten(),
        tn.Linear(128, 128),
        tn.ReLU(),
        tn.Linear(128, 10),
    )


# needle hw4 reports about 500 s per CIFAR-10 epoch (50,000 images) on its own CPU backend.
NEEDLE_EPOCH_SECONDS = 500.0


def resnet9_cases(quick: bool) -> list[Case]:
    """One ResNet9 (hw4 variant) training step on CIFAR-shaped input, batch 128, Adam."""
    from convlab.models import ResNet9

    torch = _torch()
    rng = np.random.default_rng(9)
    x = rng.random((BATCH, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    ours = _training_step(convlab, ResNet9("hw4"), x, y)
    theirs = _training_step(torch, _torch_resnet9(torch), x, y) if torch else None
    return [
        Case(
            "resnet9",
            f"ResNet9 (hw4) training step, batch {BATCH}",
            ours,
            theirs,
            None,
            BATCH,
            "img/s",
        )
    ]
