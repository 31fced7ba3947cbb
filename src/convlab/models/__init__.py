"""Ready-made models: the price-trend :class:`ChartCNN` and :class:`ResNet9`."""

from convlab.models.chart_cnn import ChartCNN
from convlab.models.resnet import ResNet9

__all__ = ["ChartCNN", "ResNet9"]
