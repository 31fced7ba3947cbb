"""Optimizers (``convlab.optim``) with PyTorch's update rules and state-dict layout.

Example:
    >>> import convlab
    >>> from convlab import nn, optim
    >>> model = nn.Linear(3, 1)
    >>> opt = optim.Adam(model.parameters(), lr=1e-2)
    >>> loss = model(convlab.ones(4, 3)).sum()
    >>> loss.backward()
    >>> opt.step()
    >>> opt.zero_grad()
"""

from __future__ import annotations

from convlab.optim import lr_scheduler
from convlab.optim.adadelta import Adadelta
from convlab.optim.adagrad import Adagrad
from convlab.optim.adam import Adam, AdamW
from convlab.optim.adamax import Adamax
from convlab.optim.asgd import ASGD
from convlab.optim.nadam import NAdam
from convlab.optim.optimizer import Optimizer
from convlab.optim.radam import RAdam
from convlab.optim.rmsprop import RMSprop
from convlab.optim.sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "Adadelta",
    "Adagrad",
    "RMSprop",
    "NAdam",
    "lr_scheduler",
    "Adamax",
    "RAdam",
    "ASGD",
]
