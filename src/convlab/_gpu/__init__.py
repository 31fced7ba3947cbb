"""GPU backend (CuPy). Imports nothing from CuPy until a kernel is first needed."""
