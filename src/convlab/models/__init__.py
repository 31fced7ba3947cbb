"""Ready-made models: the price-trend :class:`ChartCNN`, :class:`ResNet9` and the word-level
:class:`LanguageModel`."""

from convlab.models.chart_cnn import ChartCNN
from convlab.models.language_model import LanguageModel
from convlab.models.resnet import ResNet9

__all__ = ["ChartCNN", "ResNet9", "LanguageModel"]
