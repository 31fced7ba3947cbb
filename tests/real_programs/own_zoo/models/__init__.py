"""Our CIFAR-10 model zoo: one module per architecture family, and ``build`` by name."""

from .densenet import densenet121
from .dla import DLA, simple_dla
from .dpn import dpn26, dpn92
from .efficientnet import efficientnet_b0
from .googlenet import GoogLeNet
from .lenet import LeNet
from .mobilenet import MobileNet
from .mobilenetv2 import MobileNetV2
from .pnasnet import PNASNet
from .preact_resnet import preact_resnet18
from .regnet import regnetx_200mf, regnetx_400mf
from .resnet import resnet18, resnet34, resnet50
from .resnext import resnext29_2x64d, resnext29_4x32d
from .senet import senet18
from .shufflenet import shufflenet_g2, shufflenet_g3
from .shufflenetv2 import ShuffleNetV2
from .vgg import vgg11, vgg13, vgg16, vgg19

#: command-line name -> constructor (keyword arguments such as ``width`` pass through)
ARCHITECTURES = {
    "vgg11": vgg11,
    "vgg13": vgg13,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "preact_resnet18": preact_resnet18,
    "googlenet": GoogLeNet,
    "densenet121": densenet121,
    "resnext29_2x64d": resnext29_2x64d,
    "resnext29_4x32d": resnext29_4x32d,
    "mobilenet": MobileNet,
    "mobilenetv2": MobileNetV2,
    "dpn26": dpn26,
    "dpn92": dpn92,
    "shufflenet_g2": shufflenet_g2,
    "shufflenet_g3": shufflenet_g3,
    "shufflenetv2": ShuffleNetV2,
    "senet18": senet18,
    "efficientnet_b0": efficientnet_b0,
    "regnetx_200mf": regnetx_200mf,
    "regnetx_400mf": regnetx_400mf,
    "dla": DLA,
    "simple_dla": simple_dla,
    "pnasnet": PNASNet,
    "lenet": LeNet,
}


def build(name, **kwargs):
    """The model called `name` in ``ARCHITECTURES``, constructed with `kwargs`."""
    return ARCHITECTURES[name](**kwargs)
