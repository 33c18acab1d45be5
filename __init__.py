"""churnlens: churn prediction for B2B SaaS customer success."""

__version__ = "0.1.0"
