"""SRDC-TF: Structurally Regularized Deep Clustering for domain adaptation."""

__version__ = "0.1.0"
