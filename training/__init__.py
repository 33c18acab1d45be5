"""churnlens.training."""
