"""A timing harness: registers on every port of a core, so place-and-route times it honestly.

Out-of-context place-and-route leaves paths from and to I/O pins untimed (or timed against an
arbitrary pin), so the Fmax it reports is fiction. Inside :class:`RegisteredHarness` every path
of the core starts and ends at a flip-flop on the same clock, every core output reaches a pin
(so nothing is optimized away), and the design has four pins whatever the core's port widths.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RegisteredHarness"]

# Output flops are reduced four at a time: one XOR level fits one iCE40/ECP5 LUT4.
_XOR_FANIN = 4

# Longest run of the input shift register. yosys's techmap orders cells by a recursive
# topological sort, and YoWASP yosys (WebAssembly, small stack) traps with "call stack
# exhausted" on flop chains near 2700 cells; longer inputs are split into rows.
ROW_BITS = 1024


def _ports(core: wiring.Component, flow: wiring.Flow) -> list[Value]:
    # `Signature.flatten(obj)` walks `signature.members.flatten()`, also expands array members
    # element by element, and returns the port objects themselves (Signals or views) with
    # their flow resolved through flipped sub-signatures (In = driven from outside the core).
    # Constants (an always_ready stream's ready) are neither driven nor observed.
    return [Value.cast(value) for _, member, value in core.signature.flatten(core)
            if member.flow == flow and not isinstance(Value.cast(value), Const)]


class RegisteredHarness(wiring.Component):
    """Wrap ``core`` between flip-flops so nextpnr times every core path register to register.

    * Every ``In`` port of the core is driven by a bit of a shift register fed from the pin
      ``din``; the core's inputs are thus registered, not constant and all different. Inputs
      wider than :data:`ROW_BITS` use several shift registers ("rows") of at most that length:
      row 0 shifts in ``din``, row ``r`` shifts in ``din ^ row[r-1][0]``, so each row carries a
      different XOR of past ``din`` bits and no two flops are equal (yosys would merge flops
      with the same input, and the core's logic would shrink with them).
    * Every ``Out`` port is captured in a flip-flop; those flops are XOR-reduced to the pin
      ``dout`` by a tree of 4-input XORs with a register after every level, so the harness adds
      one LUT level per stage and never limits Fmax, and no output bit is left unobserved.

    The core and the harness run in the ``sync`` domain (ports ``clk`` and ``rst`` of the
    elaborated top). Latency from ``din`` to ``dout`` is irrelevant: the harness is for timing
    and resource use only, not for simulation against a reference.

    Parameters
    ----------
    core : amaranth.lib.wiring.Component
        Any component using the ``sync`` domain; its ports may have any shape, including
        ``data.View`` payloads and arrays of interfaces.

    Members
    -------
    din : In(1)
        Serial input feeding the input shift register.
    dout : Out(1)
        XOR of all registered core outputs.

    Attributes
    ----------
    in_bits, out_bits : int
        Total width of the core's In / Out ports (= flops in the shift register / capture stage).
    tree_flops : int
        Flops of the pipelined XOR tree after the capture stage (0 for a one-bit output).
    xor_levels : int
        Register stages of the XOR tree.

    Raises
    ------
    TypeError
        ``core`` is not an ``amaranth.lib.wiring.Component``.
    ValueError
        ``core`` has no ``Out`` port bits, so there would be nothing to observe.
    """

    def __init__(self, core):
        if not isinstance(core, wiring.Component):
            raise TypeError(f"Core must be an amaranth.lib.wiring.Component, not {core!r}")
        self.core = core
        self._inputs = _ports(core, wiring.In)
        self._outputs = _ports(core, wiring.Out)
        self.in_bits = sum(len(v) for v in self._inputs)
        self.out_bits = sum(len(v) for v in self._outputs)
        if self.out_bits == 0:
            raise ValueError(f"Core {core!r} has no Out port bits; a harness would observe nothing")
        self.xor_levels, self.tree_flops = _tree_size(self.out_bits)
        super().__init__({"din": In(1), "dout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core

        if self.in_bits:
            shift = Cat(self._input_rows(m))
            offset = 0
            for port in self._inputs:
                m.d.comb += port.eq(shift[offset:offset + len(port)])
                offset += len(port)

        level = Signal(self.out_bits)
        m.d.sync += level.eq(Cat(*self._outputs))
        while len(level) > 1:
            groups = [level[i:i + _XOR_FANIN] for i in range(0, len(level), _XOR_FANIN)]
            reduced = Signal(len(groups))
            m.d.sync += reduced.eq(Cat(group.xor() for group in groups))
            level = reduced
        m.d.comb += self.dout.eq(level)
        return m

    def _input_rows(self, m: Module) -> list[Signal]:
        """The input shift registers, at most ``ROW_BITS`` each, added to ``m``."""
        rows = []
        for start in range(0, self.in_bits, ROW_BITS):
            row = Signal(min(ROW_BITS, self.in_bits - start), name=f"shift_{len(rows)}")
            feed = self.din if not rows else self.din ^ rows[-1][0]
            # Shift towards the MSB: the feed enters at bit 0.
            m.d.sync += row.eq(Cat(feed, row[:-1]))
            rows.append(row)
        return rows


def _tree_size(width: int) -> tuple[int, int]:
    """Register stages and flops of the XOR tree that reduces ``width`` bits to one."""
    levels = flops = 0
    while width > 1:
        width = -(-width // _XOR_FANIN)
        levels += 1
        flops += width
    return levels, flops
