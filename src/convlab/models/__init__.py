"""Ready-made models: the price-trend :class:`ChartCNN`."""
from convlab.models.chart_cnn import ChartCNN

__all__ = ["ChartCNN"]
