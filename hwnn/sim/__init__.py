"""Simulation: drive cores with numpy vectors and compare them with their reference models."""

from . import cxxrtl
from .cxxrtl import EngineError
from .harness import ENGINES, StreamRun, run_stream
from .payload import PayloadCodec
from .stream import stream_get, stream_put
from .vectors import corner_vectors, make_vectors

__all__ = ["ENGINES", "EngineError", "PayloadCodec", "StreamRun", "corner_vectors", "cxxrtl",
           "make_vectors", "run_stream", "stream_get", "stream_put"]
