"""convlab.vision (torchvision's names) against PyTorch, PIL and NumPy references."""

from __future__ import annotations

import importlib.util
import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convlab
from conftest import needs_torch, torch
from convlab.vision import datasets, models, transforms, utils
from convlab.vision.datasets import DatasetFormatError, DatasetNotFoundError
from data_files import CIFAR_NAMES, cifar_batch, write_cifar_py, write_mnist, write_tiny_mnist


def _np(t):
    return t.numpy() if isinstance(t, convlab.Tensor) else np.asarray(t)


# ---------------------------------------------------------------- transforms
@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3), (4, 6, 1)])
@pytest.mark.parametrize("as_pil", [False, True])
def test_to_tensor_takes_pictures_as_torchvision(shape, as_pil):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    picture = Image.fromarray(image if shape[-1] != 1 else image[..., 0]) if as_pil else image
    out = transforms.ToTensor()(picture)
    hwc = image if image.ndim == 3 else image[..., None]
    assert out.dtype == convlab.float32 and tuple(out.shape) == hwc.transpose(2, 0, 1).shape
    # torchvision: img.to(float32).div(255), bit for bit
    np.testing.assert_array_equal(_np(out), hwc.transpose(2, 0, 1).astype(np.float32) / 255)


def test_to_tensor_keeps_other_dtypes_and_refuses_tensors():
    image = np.random.default_rng(0).standard_normal((3, 4, 2))
    out = transforms.ToTensor()(image)
    assert out.dtype == convlab.float64  # unscaled, as torchvision
    np.testing.assert_array_equal(_np(out), image.transpose(2, 0, 1))
    with pytest.raises(TypeError, match="pic"):
        transforms.ToTensor()(out)


def test_to_tensor_then_normalize_as_torchvision():
    image = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    out = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])(
        image
    )
    expected = (image[None] / 255 - 0.1307) / 0.3081
    np.testing.assert_allclose(_np(out), expected, rtol=1e-5, atol=1e-6)


@needs_torch
def test_normalize_matches_torch_and_refuses_what_torchvision_refuses():
    x = np.random.default_rng(15).random((2, 3, 4, 5)).astype(np.float32)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    ours = _np(transforms.Normalize(mean, std)(convlab.from_numpy(x)))
    m, s = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
    np.testing.assert_array_equal(ours, ((torch.from_numpy(x) - m) / s).numpy())
    with pytest.raises(TypeError, match="tensor image"):
        transforms.Normalize(mean, std)(x[0])
    with pytest.raises(TypeError, match="float tensor"):
        transforms.Normalize(mean, std)(convlab.zeros(3, 2, 2, dtype=convlab.uint8))
    with pytest.raises(ValueError, match="3 channels"):
        transforms.Normalize((0.5, 0.5), (0.5, 0.5))(convlab.from_numpy(x))
    with pytest.raises(ValueError, match="zero"):
        transforms.Normalize((0.5,), (0.0,))(convlab.from_numpy(x))


@needs_torch
def test_normalize_is_a_differentiable_tensor_op_on_every_backend(backend):
    x = np.random.default_rng(20).random((2, 3, 4, 5))
    mean, std = (0.5, 0.4, 0.3), (0.25, 0.5, 2.0)
    ours_in = convlab.tensor(x, device=backend.name, requires_grad=True)
    ours = transforms.Normalize(mean, std)(ours_in)
    assert ours.device.type == ours_in.device.type
    theirs_in = torch.tensor(x, requires_grad=True)
    # torchvision: torch.as_tensor(mean, dtype=tensor.dtype), then sub and div
    m = torch.as_tensor(mean, dtype=torch.float64).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float64).view(-1, 1, 1)
    theirs = (theirs_in - m) / s
    np.testing.assert_allclose(ours.detach().cpu().numpy(), theirs.detach().numpy(), rtol=1e-12)
    (ours * ours).sum().backward()
    (theirs * theirs).sum().backward()
    np.testing.assert_allclose(ours_in.grad.cpu().numpy(), theirs_in.grad.numpy(), rtol=1e-12)
    inplace = convlab.tensor(x, device=backend.name)
    assert transforms.Normalize(mean, std, inplace=True)(inplace) is inplace
    np.testing.assert_allclose(inplace.cpu().numpy(), theirs.detach().numpy(), rtol=1e-12)


@needs_torch
@pytest.mark.parametrize(
    "size, shape",
    [(64, (1, 28, 28)), (9, (3, 28, 40)), ((13, 50), (2, 31, 17)), (5, (1, 40, 20))],
    ids=["up", "down-wide", "pair", "down-tall"],
)
def test_resize_float_matches_torch_antialiased_bilinear(size, shape):
    image = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    out = _np(transforms.Resize(size)(convlab.from_numpy(image)))
    h, w = shape[-2:]
    if isinstance(size, int):  # torchvision: the smaller edge becomes size, the other rounds down
        target = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    else:
        target = size
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(image)[None], target, mode="bilinear", antialias=True, align_corners=False
    )[0].numpy()
    assert out.shape == expected.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [64, 11, (20, 9), (28, 13), (5, 28)])
@pytest.mark.parametrize("seed", [3, 4])
def test_resize_uint8_matches_pil_bilinear(size, seed):
    image = np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)
    out = transforms.Resize(size)(image)  # a picture, as MNIST's
    target = (size, size) if isinstance(size, int) else size
    expected = np.asarray(Image.fromarray(image).resize(target[::-1], Image.BILINEAR))
    assert out.dtype == np.uint8 and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    pil = transforms.Resize(size)(Image.fromarray(image))  # PIL in, PIL out
    np.testing.assert_array_equal(np.asarray(pil), expected)


def test_resize_rgb_picture_matches_pil():
    image = np.random.default_rng(5).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(image).resize((9, 7), Image.BILINEAR))
    np.testing.assert_array_equal(transforms.Resize((7, 9))(image), expected)


def test_resize_max_size_and_errors():
    out = transforms.Resize(10, max_size=15)(np.zeros((10, 40), np.uint8))
    assert out.shape == (3, 15)  # torchvision: the long edge capped, the short scaled with it
    with pytest.raises(ValueError, match="size"):
        transforms.Resize(0)
    with pytest.raises(ValueError, match="interpolation"):
        transforms.Resize(4, interpolation=transforms.InterpolationMode.NEAREST)
    with pytest.raises(ValueError, match="antialias"):
        transforms.Resize(4, antialias=False)


@pytest.mark.parametrize(
    "shape, size", [((1, 9, 8), 4), ((3, 7, 10), (3, 5)), ((1, 4, 5), 7), ((2, 3, 3), (6, 2))]
)
def test_center_crop_as_torchvision(shape, size):
    image = np.arange(math.prod(shape), dtype=np.float32).reshape(shape) + 1
    ch, cw = (size, size) if isinstance(size, int) else size
    h, w = shape[-2:]
    # torchvision: zero-pad (odd pixel after) to at least the crop, then cut at round((H-h)/2)
    ph, pw = max(ch - h, 0), max(cw - w, 0)
    padded = np.pad(image, ((0, 0), (ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2)))
    top = int(round((padded.shape[1] - ch) / 2.0))
    left = int(round((padded.shape[2] - cw) / 2.0))
    expected = padded[:, top : top + ch, left : left + cw]
    out = transforms.CenterCrop(size)(convlab.from_numpy(image))
    np.testing.assert_array_equal(_np(out), expected)
    picture = transforms.CenterCrop(size)(image.transpose(1, 2, 0))  # (H, W, C) in and out
    np.testing.assert_array_equal(picture, expected.transpose(1, 2, 0))


@needs_torch
@pytest.mark.parametrize(
    "padding, sides, mode, torch_mode",  # sides: torchvision's (left, top, right, bottom)
    [
        (2, (2, 2, 2, 2), "constant", "constant"),
        ((1, 3), (1, 3, 1, 3), "edge", "replicate"),
        ((1, 2, 3, 0), (1, 2, 3, 0), "reflect", "reflect"),
    ],
)
def test_pad_matches_torch(padding, sides, mode, torch_mode):
    image = np.random.default_rng(12).standard_normal((2, 5, 6)).astype(np.float32)
    left, top, right, bottom = sides
    expected = torch.nn.functional.pad(
        torch.from_numpy(image)[None], (left, right, top, bottom), mode=torch_mode
    )[0]
    out = transforms.Pad(padding, padding_mode=mode)(convlab.from_numpy(image))
    np.testing.assert_array_equal(_np(out), expected.numpy())
    picture = transforms.Pad(padding, padding_mode=mode)(image.transpose(1, 2, 0))
    np.testing.assert_array_equal(picture, expected.numpy().transpose(1, 2, 0))


def test_pad_symmetric_and_fill():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)  # an (H, W) picture
    out = transforms.Pad((2, 1), padding_mode="symmetric")(image)
    row = lambda r: [r[1], r[0], *r, r[2], r[1]]  # noqa: E731 - mirrored with the border
    rows = [row(image[0]), row(image[1])]
    np.testing.assert_array_equal(out, [rows[0], *rows, rows[1]])
    filled = transforms.Pad(1, fill=7)(image)
    assert filled.shape == (4, 5) and filled[0, 0] == 7 and filled[1, 1] == 0
    with pytest.raises(ValueError, match="padding_mode"):
        transforms.Pad(1, padding_mode="wrap")


def test_random_crop_with_torchvisions_arguments():
    image = np.arange(2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7) + 1
    padded = np.pad(image, ((0, 0), (2, 2), (2, 2)))
    crop = transforms.RandomCrop(6, padding=2)
    seen = set()
    for _ in range(40):
        out = _np(crop(convlab.from_numpy(image)))
        assert out.shape == (2, 6, 6)
        matches = [
            (y, x)
            for y in range(padded.shape[1] - 5)
            for x in range(padded.shape[2] - 5)
            if np.array_equal(padded[:, y : y + 6, x : x + 6], out)
        ]
        assert matches  # a window of the padded image
        seen.update(matches)
    assert len(seen) > 5  # the position is random
    picture = image.transpose(1, 2, 0)
    small = transforms.RandomCrop((8, 9), pad_if_needed=True, padding_mode="edge")(picture)
    assert small.shape == (8, 9, 2)
    with pytest.raises(ValueError, match="pad_if_needed"):
        transforms.RandomCrop(8)(picture)


def test_flips():
    picture = np.arange(12, dtype=np.uint8).reshape(2, 3, 2)  # (H, W, C)
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(1.0)(picture), picture[:, ::-1])
    np.testing.assert_array_equal(transforms.RandomVerticalFlip(1.0)(picture), picture[::-1])
    tensor = convlab.from_numpy(picture.transpose(2, 0, 1).copy())
    flipped = _np(transforms.RandomHorizontalFlip(1.0)(tensor))
    np.testing.assert_array_equal(flipped, picture.transpose(2, 0, 1)[..., ::-1])
    assert transforms.RandomHorizontalFlip(0.0)(picture) is picture
    pil = transforms.RandomHorizontalFlip(1.0)(Image.fromarray(picture[..., 0]))
    np.testing.assert_array_equal(np.asarray(pil), picture[:, ::-1, 0])


def test_grayscale_as_pil_and_torchvision():
    rgb = np.random.default_rng(13).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(transforms.Grayscale()(rgb), expected)  # PIL's "L": (H, W)
    three = transforms.Grayscale(3)(rgb)
    assert three.shape == (9, 7, 3) and (three == expected[..., None]).all()
    pil = transforms.Grayscale()(Image.fromarray(rgb))
    assert pil.mode == "L" and np.array_equal(np.asarray(pil), expected)
    floats = rgb.transpose(2, 0, 1).astype(np.float32) / 255
    grey = _np(transforms.Grayscale()(convlab.from_numpy(floats)))
    reference = 0.2989 * floats[0] + 0.587 * floats[1] + 0.114 * floats[2]
    assert grey.shape == (1, 9, 7)
    np.testing.assert_allclose(grey[0], reference, rtol=1e-6)
    with pytest.raises(ValueError, match="RGB"):
        transforms.Grayscale()(np.zeros((4, 4), np.uint8))


def test_pil_to_tensor_and_to_pil_image():
    rgb = np.random.default_rng(18).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    tensor = transforms.PILToTensor()(Image.fromarray(rgb))
    assert tensor.dtype == convlab.uint8  # unscaled, as torchvision
    np.testing.assert_array_equal(_np(tensor), rgb.transpose(2, 0, 1))
    back = transforms.ToPILImage()(tensor)
    assert back.mode == "RGB" and np.array_equal(np.asarray(back), rgb)
    floats = convlab.from_numpy(np.array([[[0.0, 0.5, 1.0]]], np.float32))
    grey = transforms.ToPILImage()(floats)  # torchvision: mul(255).byte(), truncated
    assert grey.mode == "L" and np.asarray(grey).tolist() == [[0, 127, 255]]
    with pytest.raises(TypeError, match="pic"):
        transforms.ToPILImage()([1, 2])


def test_random_resized_crop():
    image = np.random.default_rng(19).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    crop = transforms.RandomResizedCrop(8)
    shapes = {crop(image).shape for _ in range(5)}
    assert shapes == {(8, 8, 3)}
    # No cut of ratio 10 fits a 20x30 image: the central cut of that ratio, resized.
    wide = transforms.RandomResizedCrop((4, 10), scale=(0.99, 1.0), ratio=(10.0, 10.0))
    h = 30 // 10  # torchvision's fallback: w = width, h = round(w / ratio)
    top = (20 - h) // 2
    expected = transforms.Resize((4, 10))(np.ascontiguousarray(image[top : top + h]))
    np.testing.assert_array_equal(wide(image), expected)
    outs = {crop(image).tobytes() for _ in range(10)}
    assert len(outs) > 5  # random cuts
    with pytest.raises(ValueError, match="scale"):
        transforms.RandomResizedCrop(8, scale=(0.9, 0.1))


def test_lambda():
    assert transforms.Lambda(lambda x: x * 2)(3) == 6
    with pytest.raises(TypeError, match="lambd"):
        transforms.Lambda(3)


# ---------------------------------------------------------------- utils
def _grid_reference(images, nrow, padding, pad_value):
    """make_grid by hand: cells of (H + padding) x (W + padding) after a leading pad."""
    n, c, h, w = images.shape
    if c == 1:
        images = np.repeat(images, 3, axis=1)
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = np.full((3, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for k in range(n):
        r, q = k // cols, k % cols
        for y in range(h):
            for x in range(w):
                grid[:, padding + r * (h + padding) + y, padding + q * (w + padding) + x] = images[
                    k, :, y, x
                ]
    return grid


@pytest.mark.parametrize("n, nrow, padding, channels", [(5, 2, 2, 1), (8, 8, 0, 3), (3, 5, 1, 3)])
def test_make_grid_layout(n, nrow, padding, channels):
    images = np.random.default_rng(4).random((n, channels, 4, 6)).astype(np.float32)
    grid = utils.make_grid(convlab.from_numpy(images), nrow=nrow, padding=padding, pad_value=0.5)
    np.testing.assert_array_equal(_np(grid), _grid_reference(images, nrow, padding, 0.5))


def test_make_grid_normalize():
    images = np.random.default_rng(5).standard_normal((4, 3, 2, 2)).astype(np.float32) * 3
    together = _np(utils.make_grid(images, normalize=True, padding=0, nrow=4))
    scaled = (images - images.min()) / (images.max() - images.min())
    np.testing.assert_allclose(together, _grid_reference(scaled, 4, 0, 0.0), rtol=1e-6)
    each = _np(utils.make_grid(images, normalize=True, scale_each=True, padding=0, nrow=4))
    lo, hi = images.min(axis=(1, 2, 3), keepdims=True), images.max(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(each, _grid_reference((images - lo) / (hi - lo), 4, 0, 0.0), 1e-6)
    clipped = _np(utils.make_grid(images, normalize=True, value_range=(-1, 1), padding=0, nrow=4))
    expected = (np.clip(images, -1, 1) + 1) / 2
    np.testing.assert_allclose(clipped, _grid_reference(expected, 4, 0, 0.0), rtol=1e-6)
    one = _np(utils.make_grid(images[:1]))  # one image: no padding, as torchvision
    assert one.shape == (3, 2, 2)


def test_save_image_writes_the_grid_as_png(tmp_path):
    images = np.random.default_rng(6).random((3, 1, 5, 4)).astype(np.float32) * 1.2 - 0.1
    utils.save_image(convlab.from_numpy(images), tmp_path / "grid.png", nrow=2)
    decoded = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB"))
    grid = _grid_reference(images, 2, 2, 0.0)
    expected = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(decoded, expected)
    buffer = io.BytesIO()
    utils.save_image(images, buffer, format="png", nrow=2)
    assert buffer.getvalue() == (tmp_path / "grid.png").read_bytes()
    with pytest.raises(ValueError, match="PNG only"):
        utils.save_image(images, tmp_path / "grid.jpg")
    with pytest.raises(TypeError, match="unexpected arguments"):
        utils.save_image(images, tmp_path / "grid.png", colour=1)


# ---------------------------------------------------------------- datasets
def test_fake_data_is_stable_per_index():
    ds = datasets.FakeData(size=5, image_size=(3, 8, 6), num_classes=4, random_offset=7)
    image, label = ds[2]
    assert image.shape == (8, 6, 3) and image.dtype == np.uint8 and 0 <= label < 4
    again, label_again = ds[2]
    np.testing.assert_array_equal(image, again)
    assert label == label_again and len(ds) == 5
    assert not np.array_equal(ds[1][0], image)
    grey, _ = datasets.FakeData(size=2, image_size=(1, 4, 5))[0]
    assert grey.shape == (4, 5)  # one channel: an (H, W) picture, as PIL's "L"
    tensor, _ = datasets.FakeData(size=2, image_size=(1, 4, 4), transform=transforms.ToTensor())[0]
    assert isinstance(tensor, convlab.Tensor) and tensor.dtype == convlab.float32
    assert tuple(tensor.shape) == (1, 4, 4)
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ValueError, match="image_size"):
        datasets.FakeData(image_size=(3, 8))


def test_mnist_through_vision_names(tmp_path):
    write_tiny_mnist(tmp_path, n_train=6, n_test=2, seed=8)
    plain = datasets.MNIST(str(tmp_path), train=True)
    ds = datasets.MNIST(
        str(tmp_path),
        train=True,
        download=True,  # present: nothing is fetched
        transform=transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
        ),
    )
    image, label = ds[3]
    raw, raw_label = plain[3]
    assert isinstance(label, int) and label == raw_label
    assert tuple(image.shape) == (1, 28, 28)
    assert raw.shape == (28, 28)  # the picture torchvision's PIL image would be
    expected = (raw[None] / 255 - 0.1307) / 0.3081
    np.testing.assert_allclose(_np(image), expected, rtol=1e-5, atol=1e-6)


def test_mnist_has_torchvisions_attributes(tmp_path):
    rng = np.random.default_rng(9)
    images = {"train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)}
    labels = {"train": np.array([3, 1, 3, 0, 9, 3], np.uint8)}
    write_mnist(tmp_path / "MNIST" / "raw", images, labels)
    ds = datasets.MNIST(tmp_path, transform=transforms.ToTensor())
    assert ds.train is True and ds.root == tmp_path
    assert isinstance(ds.data, convlab.Tensor) and tuple(ds.data.shape) == (6, 28, 28)
    assert ds.data.dtype == convlab.uint8 and ds.targets.dtype == convlab.int64
    np.testing.assert_array_equal(_np(ds.data), images["train"])
    np.testing.assert_array_equal(_np(ds.targets), labels["train"])
    assert ds.classes[3] == "3 - three" and ds.class_to_idx["9 - nine"] == 9
    ds.data[0, 0, 0] = 255 - images["train"][0, 0, 0]  # the tensors share the dataset's memory
    assert _np(ds[0][0])[0, 0, 0] == np.float32(255 - images["train"][0, 0, 0]) / np.float32(255)
    keep = labels["train"] == 3  # the usual "only some digits" subset
    ds.data, ds.targets = images["train"][keep], labels["train"][keep]
    assert len(ds) == 3 and ds[1][1] == 3
    np.testing.assert_allclose(_np(ds[1][0])[0], images["train"][2] / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="as many images as labels"):
        ds.targets = [1, 2]
    with pytest.raises(ValueError, match=r"uint8 \(N, H, W\)"):
        ds.data = np.zeros((2, 1, 28, 28), np.uint8)


def test_cifar10_has_torchvisions_attributes(tmp_path):
    rng = np.random.default_rng(10)
    batches = {name: cifar_batch(rng, 3) for name in CIFAR_NAMES}
    write_cifar_py(tmp_path, batches)
    ds = datasets.CIFAR10(tmp_path, train=False)
    data, labels = batches["test_batch"]
    expected = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # torchvision: HWC
    assert isinstance(ds.data, np.ndarray) and ds.data.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(ds.data, expected)
    assert ds.targets == [int(v) for v in labels] and isinstance(ds.targets[0], int)
    assert ds.class_to_idx["truck"] == 9 and ds.train is False
    ds.targets[1] = (labels[1] + 1) % 10  # label noise, written into torchvision's list
    assert ds[1][1] == (labels[1] + 1) % 10
    ds.data, ds.targets = expected[1:], labels[1:]
    assert len(ds) == 2
    # Items are (H, W, C) pictures, as np.asarray of torchvision's PIL images.
    np.testing.assert_array_equal(ds[0][0], data[1].reshape(3, 32, 32).transpose(1, 2, 0))


# ---------------------------------------------------------------- models
def _torch_resnet(layers, bottleneck, num_classes):
    """torchvision's ResNet layout in torch.nn (the test-side torchvision stand-in's)."""
    path = Path(__file__).parent / "real_programs/torchvision_shim/torchvision/models.py"
    spec = importlib.util.spec_from_file_location("_torchvision_shim_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ResNet(layers, bottleneck, num_classes=num_classes)


@pytest.mark.parametrize(
    "name, parameters",  # torchvision's documented parameter counts
    [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032)],
)
def test_resnet_has_torchvisions_size(name, parameters):
    model = getattr(models, name)()
    assert sum(p.numel() for p in model.parameters()) == parameters


@needs_torch
@pytest.mark.parametrize(
    "layers, bottleneck",
    [([2, 2, 2, 2], False), ([1, 1, 1, 1], True)],
    ids=["resnet18", "bottleneck-1111"],  # the Bottleneck stages of resnet50, fewer of them
)
def test_resnet_matches_torch_with_the_same_weights(layers, bottleneck):
    torch.manual_seed(0)
    theirs = _torch_resnet(layers, bottleneck, num_classes=7).double()
    block = models.Bottleneck if bottleneck else models.BasicBlock
    ours = models.ResNet(block, layers, num_classes=7).to(convlab.float64)
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)  # torchvision's names, in its order
    ours.load_state_dict(convlab.utils.from_torch_state_dict(state))
    x = np.random.default_rng(11).standard_normal((2, 3, 24, 20))
    for train in (True, False):
        theirs.train(train)
        ours.train(train)
        t_in = torch.tensor(x, requires_grad=True)
        c_in = convlab.tensor(x, requires_grad=True)
        t_out, c_out = theirs(t_in), ours(c_in)
        expected = t_out.detach().numpy()
        np.testing.assert_allclose(_np(c_out.detach()), expected, rtol=1e-9, atol=1e-10)
        (t_out * t_out).sum().backward()
        (c_out * c_out).sum().backward()
        # Sums of thousands of terms cancel: errors are relative to the largest entry.
        for mine, reference in (
            (c_in.grad, t_in.grad),
            (ours.conv1.weight.grad, theirs.conv1.weight.grad),
        ):
            expected = reference.numpy()
            np.testing.assert_allclose(_np(mine), expected, atol=1e-9 * np.abs(expected).max())
        theirs.zero_grad()
        ours.zero_grad()


def test_resnet_initialisation_as_torchvision():
    convlab.manual_seed(0)
    model = models.resnet18(zero_init_residual=True)
    weight = _np(model.layer4[1].conv2.weight)
    fan_out = weight.shape[0] * 9
    assert abs(weight.std() / math.sqrt(2 / fan_out) - 1) < 0.01  # kaiming_normal_, fan_out
    assert abs(weight.mean()) < 1e-3
    np.testing.assert_array_equal(_np(model.bn1.weight), 1)
    np.testing.assert_array_equal(_np(model.bn1.bias), 0)
    np.testing.assert_array_equal(_np(model.layer1[0].bn2.weight), 0)  # zero_init_residual
    np.testing.assert_array_equal(_np(model.layer1[0].bn1.weight), 1)
    with pytest.raises(ValueError, match="weights"):
        models.resnet18(weights="IMAGENET1K_V1")


# ---------------------------------------------------------------- ImageFolder
def _image_tree(root):
    """root/cat/{b,a}.png, root/dog/{x.png, sub/c.png, notes.txt}: known pixels."""
    rng = np.random.default_rng(14)
    pixels = {}
    for rel, mode in (
        ("cat/b.png", "RGB"),
        ("cat/a.PNG", "RGB"),
        ("dog/x.png", "L"),
        ("dog/sub/c.png", "RGB"),
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shape = (5, 4, 3) if mode == "RGB" else (5, 4)
        array = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(array, mode).save(path)
        rgb = array if mode == "RGB" else np.repeat(array[..., None], 3, axis=2)
        pixels[str(path)] = rgb.transpose(2, 0, 1)
    (root / "dog" / "notes.txt").write_text("not an image")
    return pixels


def test_image_folder_as_torchvision(tmp_path):
    pixels = _image_tree(tmp_path)
    ds = datasets.ImageFolder(tmp_path, transform=transforms.ToTensor())
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    expected = [  # class by class, each in sorted walk order; extensions case-insensitive
        (str(tmp_path / "cat" / "a.PNG"), 0),
        (str(tmp_path / "cat" / "b.png"), 0),
        (str(tmp_path / "dog" / "x.png"), 1),
        (str(tmp_path / "dog" / "sub" / "c.png"), 1),
    ]
    assert ds.samples == expected and ds.imgs == expected and ds.targets == [0, 0, 1, 1]
    for i, (path, label) in enumerate(expected):
        image, target = ds[i]
        assert target == label
        np.testing.assert_allclose(_np(image), pixels[path] / 255, rtol=1e-6)
    loader = convlab.utils.data.DataLoader(ds, batch_size=2)
    images, labels = next(iter(loader))
    assert tuple(images.shape) == (2, 3, 5, 4) and labels.tolist() == [0, 0]


def test_image_folder_options_and_errors(tmp_path):
    _image_tree(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no valid file for the classes empty"):
        datasets.ImageFolder(tmp_path)
    ds = datasets.ImageFolder(tmp_path, allow_empty=True)
    assert ds.classes == ["cat", "dog", "empty"] and len(ds) == 4
    texts = datasets.DatasetFolder(
        tmp_path,
        loader=lambda p: Path(p).read_text(),
        is_valid_file=lambda p: p.endswith(".txt"),
        allow_empty=True,
    )
    assert texts.samples == [(str(tmp_path / "dog" / "notes.txt"), 1)]
    assert texts[0] == ("not an image", 1)
    with pytest.raises(ValueError, match="exactly one"):
        datasets.DatasetFolder(tmp_path, loader=str, extensions=(".png",), is_valid_file=bool)
    with pytest.raises(FileNotFoundError, match="class folder"):
        datasets.ImageFolder(tmp_path / "cat")


# ---------------------------------------------------------------- CIFAR-100
def _cifar100_batches(seed=16):
    rng = np.random.default_rng(seed)
    return {
        name: (rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 100, n))
        for name, n in (("train", 5), ("test", 3))
    }


@pytest.mark.parametrize("python2", [True, False])
def test_cifar100_python_version(tmp_path, python2):
    batches = _cifar100_batches()
    write_cifar_py(tmp_path, batches, python2, "cifar-100-python", b"fine_labels")
    for train, name in ((True, "train"), (False, "test")):
        ds = datasets.CIFAR100(tmp_path, train=train)
        data, labels = batches[name]
        np.testing.assert_array_equal(ds.data, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        assert ds.targets == [int(v) for v in labels]
    assert len(ds.classes) == 100 and ds.classes[:3] == ["apple", "aquarium_fish", "baby"]
    assert ds.class_to_idx["worm"] == 99 and ds.classes == sorted(ds.classes)


def test_cifar100_binary_version_uses_the_fine_label(tmp_path):
    batches = _cifar100_batches(17)
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    for name, (data, fine) in batches.items():
        coarse = fine // 5
        records = np.concatenate([coarse[:, None], fine[:, None], data], axis=1)
        (folder / f"{name}.bin").write_bytes(records.astype(np.uint8).tobytes())
    ds = datasets.CIFAR100(tmp_path, train=False)
    assert ds.targets == [int(v) for v in batches["test"][1]]
    np.testing.assert_array_equal(
        ds[0][0], batches["test"][0][0].reshape(3, 32, 32).transpose(1, 2, 0)
    )


def test_cifar100_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python.tar.gz"):
        datasets.CIFAR100(tmp_path)
    data, labels = _cifar100_batches()["train"]
    write_cifar_py(
        tmp_path, {"train": (data, labels + 100)}, True, "cifar-100-python", b"fine_labels"
    )
    with pytest.raises(DatasetFormatError, match=r"0\.\.99"):
        datasets.CIFAR100(tmp_path)
