"""The steps samplers share (``kernels``) and guidance (``guidance``)."""
