"""churnlens.features."""
