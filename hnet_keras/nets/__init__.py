"""The networks: models, the iterative model, losses, checkpoints with their description and rho."""
