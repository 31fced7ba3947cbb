# For mypy, which reads no .pyx: the compiled module _xent.pyx, its names typed Any. A
# stub, not an .ignore_missing_imports override: `from convlab._cpu import _xent` (a
# submodule imported as a package attribute) is an error mypy's import options cannot silence.
from typing import Any

def __getattr__(name: str) -> Any: ...
