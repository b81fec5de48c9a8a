"""Models: how a network is built, and how a trained one is loaded back from its run folder.

Owns the fine-tuned EfficientNet with its regression and reasons heads (``network``), the frozen
feature model (``pooled_stats``) and ``load`` (run folder -> ``TrainedModel``). Training, export,
the benchmarks and the ablation all build and load models through here; it imports only
``contract``, ``errors`` and ``sdk``. This folder also holds the bundled model files
(``default.tflite``, its manifest, card, test vectors and run folder), which the SDK reads as files.
"""
