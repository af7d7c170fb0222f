"""hwnn: quantized neural-network cores for FPGAs on the open toolchain.

Plans (``hwnn.plans``) hold the quantized integers and derived constants; reference models
(``hwnn.ref``) and Amaranth cores (``hwnn.cores``) both read a plan, so they agree bit for bit.
"""

from .fixed import SQ, UQ, Format, Overflow, Rounding, parse_format, quantize, requantize, to_float

__version__ = "0.1.0"

__all__ = ["SQ", "UQ", "Format", "Overflow", "Rounding", "parse_format", "quantize", "requantize",
           "to_float"]
