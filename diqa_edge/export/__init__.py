"""Export: a trained model (``diqa_edge.models.load``) to ONNX, TFLite and Core ML, each gated on parity
with PyTorch (``parity``), with its manifest, test vectors and the bundled default (``bundle``)."""
