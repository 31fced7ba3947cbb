# For mypy, which reads no .pyx: the compiled module _norm_pool.pyx, its names typed Any (see
# _norm.pyi for why a stub).
from typing import Any

def __getattr__(name: str) -> Any: ...
