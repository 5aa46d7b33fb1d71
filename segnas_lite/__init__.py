"""segnas_lite: real-time semantic segmentation on the CPU, for teaching and quick experiments."""

__version__ = "0.1.0"
