"""The risk service's machine-learning part: features, training, evaluation, model files."""
