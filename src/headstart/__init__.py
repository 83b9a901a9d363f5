"""headstart: find the best sub-network of a pretrained teacher, extract it, and pretrain it with distillation."""

__version__ = "0.1.0"
