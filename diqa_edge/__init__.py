"""diqa-edge: on-device image-quality models for teledermatology photos."""

__version__ = "0.1.0"
