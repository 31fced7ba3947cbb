"""``convlab.functional``: the same module as :mod:`convlab.nn.functional`."""

from __future__ import annotations

from convlab.nn.functional import *  # noqa: F401,F403
from convlab.nn.functional import __all__  # noqa: F401
