"""pfmbench: trace-replay benchmark for caching and serving pretrained foundation models at the edge."""

__version__ = "0.1.0"
