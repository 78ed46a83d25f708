"""Prefloop: human preference labeling, agreement, export and RLHF training."""

__version__ = "0.1.0"
