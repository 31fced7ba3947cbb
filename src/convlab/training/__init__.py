"""Training pipelines behind the command line (the chart CNN job)."""
