"""Models: features, networks, losses, checkpoints, and the PyTorch NeRF."""
