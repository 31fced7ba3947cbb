"""Benchmark cases for grouped / depthwise convolution and adaptive pooling, next to PyTorch.

Shapes are the CIFAR-10 models' layers (kuangliu/pytorch-cifar, 32x32 inputs): MobileNetV2's
depthwise 3x3 convolutions (channel counts 32..960, stride 1 and 2), ResNeXt29 32x4d's grouped
3x3 convolutions (32 groups of 4, 8 and 16 channels), and the global / adaptive pooling the
models end with. Batch 32 keeps every case well under a second on a small machine.
"""

from __future__ import annotations

import numpy as np

import convlab
from cases import Case, _torch

GROUPED_BATCH = 32

# (model, channels, out_channels, size, groups, stride): 3x3, padding 1
GROUPED_LAYERS = [
    ("MobileNetV2", 32, 32, 32, 32, 1),
    ("MobileNetV2", 96, 96, 32, 96, 1),
    ("MobileNetV2", 144, 144, 32, 144, 2),
    ("MobileNetV2", 192, 192, 16, 192, 1),
    ("MobileNetV2", 192, 192, 16, 192, 2),
    ("MobileNetV2", 384, 384, 8, 384, 1),
    ("MobileNetV2", 576, 576, 8, 576, 2),
    ("MobileNetV2", 960, 960, 4, 960, 1),
    ("ResNeXt29-32x4d", 128, 128, 32, 32, 1),
    ("ResNeXt29-32x4d", 256, 256, 32, 32, 2),
    ("ResNeXt29-32x4d", 512, 512, 16, 32, 2),
]
QUICK_GROUPED = {(32, 32, 1), (144, 32, 2), (960, 4, 1), (128, 32, 1), (256, 32, 2)}


def grouped_cases(quick: bool) -> list[Case]:
    torch = _torch()
    cpu = convlab.get_backend("cpu")
    rng = np.random.default_rng(7)
    cases = []
    for model, c, o, size, groups, stride in GROUPED_LAYERS:
        if quick and (c, size, stride) not in QUICK_GROUPED:
            continue
        n = GROUPED_BATCH
        x = rng.standard_normal((n, c, size, size), dtype=np.float32)
        w = (rng.standard_normal((o, c // groups, 3, 3), dtype=np.float32) / 3).astype(np.float32)
        out = (size - 1) // stride + 1
        dy = rng.standard_normal((n, o, out, out), dtype=np.float32)
        geom = (stride, 1, 1)
        flops = 2.0 * n * out * out * o * (c // groups) * 9
        kind = "depthwise" if groups == c else f"groups {groups}x{c // groups}"
        label = f"{model} {kind} {c}x{size}x{size} s{stride}"

        def ours_fwd(x=x, w=w, geom=geom, groups=groups):
            return cpu.conv2d_forward(x, w, None, *geom, groups=groups)

        def ours_fwd_bwd(x=x, w=w, dy=dy, geom=geom, groups=groups):
            cpu.conv2d_forward(x, w, None, *geom, groups=groups)
            cpu.conv2d_backward_data(dy, w, x.shape, *geom, groups=groups)
            cpu.conv2d_backward_weight(dy, x, w.shape, *geom, bias=False, groups=groups)

        torch_fwd = torch_fwd_bwd = None
        if torch:
            tx, tw, tdy = (torch.from_numpy(v) for v in (x, w, dy))

            def torch_fwd(tx=tx, tw=tw, geom=geom, groups=groups):
                with torch.no_grad():
                    return torch.nn.functional.conv2d(tx, tw, None, *geom, groups)

            def torch_fwd_bwd(tx=tx, tw=tw, tdy=tdy, geom=geom, groups=groups):
                xx = tx.detach().requires_grad_()
                ww = tw.detach().requires_grad_()
                torch.nn.functional.conv2d(xx, ww, None, *geom, groups).backward(tdy)

        cases.append(Case("grouped", f"{label} fwd", ours_fwd, torch_fwd, None, flops, "GFLOP/s"))
        cases.append(
            Case(
                "grouped",
                f"{label} fwd+bwd",
                ours_fwd_bwd,
                torch_fwd_bwd,
                None,
                3 * flops,
                "GFLOP/s",
            )
        )
    return cases


# (input shape, output size): MobileNetV2's and ResNet's global pooling, an uneven map
ADAPTIVE_MAPS = [
    ((GROUPED_BATCH, 1280, 4, 4), 1),
    ((GROUPED_BATCH, 512, 8, 8), 1),
    ((GROUPED_BATCH, 256, 14, 14), 7),
    ((GROUPED_BATCH, 64, 15, 15), 7),
]


def adaptive_cases(quick: bool) -> list[Case]:
    torch = _torch()
    rng = np.random.default_rng(8)
    cases = []
    for shape, size in ADAPTIVE_MAPS[:3] if quick else ADAPTIVE_MAPS:
        x = rng.standard_normal(shape, dtype=np.float32)
        for kind in ("avg", "max"):
            name = f"adaptive_{kind}_pool2d"
            ours_fn = getattr(convlab.nn.functional, name)
            cx = convlab.tensor(x, requires_grad=True)

            def ours(cx=cx, fn=ours_fn, size=size):
                cx.grad = None
                fn(cx, size).sum().backward()

            theirs = None
            if torch:
                theirs_fn = getattr(torch.nn.functional, name)
                tx = torch.from_numpy(x).requires_grad_()

                def theirs(tx=tx, fn=theirs_fn, size=size):
                    tx.grad = None
                    fn(tx, size).sum().backward()

            moved = 2 * x.nbytes  # read x, write dx (the output is small)
            cases.append(
                Case(
                    "adaptive",
                    f"{kind} {'x'.join(map(str, shape[1:]))} -> {size}x{size} fwd+bwd",
                    ours,
                    theirs,
                    None,
                    moved,
                    "GB/s",
                )
            )
    return cases
