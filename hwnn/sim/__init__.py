"""Simulation: drive cores with numpy vectors and compare them with their reference models."""

from . import compiled, cxxrtl, verilator
from .compiled import EngineError
from .harness import AUTO_MIN_CYCLES, ENGINES, EngineFallback, StreamRun, run_stream
from .payload import PayloadCodec
from .stream import stream_get, stream_put
from .vectors import corner_vectors, make_vectors

__all__ = ["AUTO_MIN_CYCLES", "ENGINES", "EngineError", "EngineFallback", "PayloadCodec",
           "StreamRun", "compiled", "corner_vectors", "cxxrtl", "make_vectors", "run_stream",
           "stream_get", "stream_put", "verilator"]
