"""Training: losses, the train/evaluate loop, distillation, recipes."""
