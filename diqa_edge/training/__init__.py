"""Training: data loading for the model, losses, the trainer, experiments over splits, the frozen
feature model's fit (``feature_model``) and its reasons head, the run card. Builds and loads
networks through ``diqa_edge.models``; judges them with ``diqa_edge.eval``."""
