"""Training: one loop, checkpoints, the registry of text-model kinds, recorded recipes, shipped checkpoints."""
