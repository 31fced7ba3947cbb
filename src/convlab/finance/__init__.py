"""The price-trend paper's evaluation on the user's own data (needs pandas).

* :mod:`convlab.finance.crsp`: the WRDS CRSP daily export as the paper's price series.
* :mod:`convlab.finance.portfolios`: decile portfolios, H-L, Sharpe, turnover, Table 1.
* :mod:`convlab.finance.signals`: the benchmark signals MOM, STR, WSTR and TREND.

The submodules import pandas when used; importing this package does not.
"""

from __future__ import annotations

__all__ = ["crsp", "portfolios", "signals"]
