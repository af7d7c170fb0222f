"""Stream transfers for hand-written Amaranth testbenches (``sim.add_testbench``).

Payloads are integer codes (a scalar, a list for ``ArrayLayout`` vectors, element 0 first, or
a dict ``{field: code or list}`` for ``StructLayout`` framed payloads), packed and unpacked as
the exported Verilog sees them.
"""

from __future__ import annotations

from amaranth.hdl import Value

from .payload import PayloadCodec

__all__ = ["stream_put", "stream_get"]


def _codec(stream):
    return PayloadCodec.for_shape(stream.signature.members["payload"].shape)


async def stream_put(ctx, stream, payload) -> None:
    """Offer ``payload`` on ``stream`` (valid high) until the receiver takes it; then drop valid.

    Returns after the clock edge of the transfer.
    """
    ctx.set(Value.cast(stream.payload), _codec(stream).pack(payload))
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Raise ready on ``stream`` until a transfer happens; return its payload as codes.

    Returns after the clock edge of the transfer, with ready low again.
    """
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(Value.cast(stream.payload)).until(stream.valid)
    ctx.set(stream.ready, 0)
    return _codec(stream).unpack(payload)
