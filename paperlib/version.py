"""The library version (part of every results-store key); re-exported as ``paperlib.__version__``."""

__version__ = "0.1.0"
