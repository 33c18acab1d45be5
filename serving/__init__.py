"""churnlens.serving."""
