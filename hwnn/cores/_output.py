"""A registered stream output whose readiness towards the core depends on registers only.

A core that stalls its whole pipeline on ``o.ready`` turns that port into a high-fan-out clock
enable behind combinational logic, which on iCE40 sets the clock rate. Here the core instead
sees ``accept``, a function of flip-flops alone, so ``o.ready`` only reaches the output
registers.
"""

from amaranth.hdl import Signal

__all__ = ["registered_output"]


def registered_output(m, o, push, payload, *, full_rate):
    """Drive stream ``o`` from registers; return ``accept`` (registered-only readiness).

    The core pushes ``payload`` in a cycle where ``push`` and ``accept`` are both high.

    ``full_rate=False``: one output register, ``accept = ~o.valid``. The register is refilled one
    cycle after it drains, which loses nothing for cores that emit at most every other cycle.

    ``full_rate=True``: a second (skid) register takes the payload pushed while ``o`` is stalled,
    so the core may push every cycle; ``accept = ~skid_valid``. Costs one more payload of flops.

    Either way ``o`` obeys the stream rules: ``valid`` stays high and ``payload`` stable until
    the transfer, and nothing is dropped or duplicated.
    """
    if not full_rate:
        accept = ~o.valid
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(push & accept):
            m.d.sync += [o.valid.eq(1), o.payload.eq(payload)]
        return accept

    skid_valid = Signal(name="skid_valid")
    skid = Signal.like(o.payload, name="skid")
    accept = ~skid_valid
    with m.If(o.ready | ~o.valid):
        with m.If(skid_valid):
            m.d.sync += [o.payload.eq(skid), o.valid.eq(1), skid_valid.eq(0)]
        with m.Elif(push):
            m.d.sync += [o.payload.eq(payload), o.valid.eq(1)]
        with m.Else():
            m.d.sync += o.valid.eq(0)
    with m.Elif(push & accept):
        m.d.sync += [skid.eq(payload), skid_valid.eq(1)]
    return accept
