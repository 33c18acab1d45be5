"""churnlens.datasets."""
