"""Layer classes; import them from :mod:`convlab.nn`."""
