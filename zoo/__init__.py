"""Ready-made DyBNN and ReActNet models. Installed as ``larq_dybnn.zoo``."""

from larq_dybnn.zoo.tiny import TinyDyBNN

__all__ = ["TinyDyBNN"]
