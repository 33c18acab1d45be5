"""churnlens.features.indicators."""
