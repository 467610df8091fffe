"""PyTorch side of angio-deploy: datasets, models and training scripts (see README.md)."""
