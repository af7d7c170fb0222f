"""A self-checking Verilog testbench for an exported core, with vectors from its reference.

The testbench needs nothing from hwnn: it reads ``<name>_in.hex`` and ``<name>_out.hex``
(one packed payload per line, element 0 in the least significant bits), drives ``i`` with
pseudo-random gaps and ``o.ready`` with pseudo-random backpressure (a 16-bit LFSR), compares
every output with the expected value, and prints ``PASS <n> vectors`` or ``FAIL ...``.
It is plain Verilog-2005 plus ``$readmemh``: Icarus Verilog and Verilator (``--binary``) run it.
"""

from __future__ import annotations

from pathlib import Path

from .sim.payload import PayloadCodec

__all__ = ["write_testbench"]

_TEMPLATE = """\
`timescale 1ns/1ps
// Self-checking testbench for {name}, written by hwnn. Vectors come from hwnn's reference model.
module {name}_tb;
  localparam integer N = {count};
  localparam integer IW = {in_width};
  localparam integer OW = {out_width};
  localparam integer TIMEOUT = {timeout};

  reg clk = 1'b0;
  reg rst = 1'b1;
  reg [IW-1:0] in_mem [0:N-1];
  reg [OW-1:0] out_mem [0:N-1];
  reg [IW-1:0] i__payload = {{IW{{1'b0}}}};
  reg i__valid = 1'b0;
  {i_ready_decl}
  wire [OW-1:0] o__payload;
  wire o__valid;
  {o_ready_decl}
  integer sent = 0;
  integer received = 0;
  integer errors = 0;
  integer cycle = 0;
  reg [15:0] lfsr = 16'hACE1;

  {name} dut (
    .clk(clk), .rst(rst),
    .i__payload(i__payload), .i__valid(i__valid){i_ready_port},
    .o__payload(o__payload), .o__valid(o__valid){o_ready_port}
  );

  always #5 clk = ~clk;

  initial begin
    $readmemh("{name}_in.hex", in_mem);
    $readmemh("{name}_out.hex", out_mem);
    repeat (3) @(posedge clk);
    @(negedge clk) rst = 1'b0;  // between edges: no race with the clocked blocks
  end

  always @(posedge clk) begin
    if (!rst) begin
      cycle <= cycle + 1;
      lfsr <= {{lfsr[14:0], lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]}};
      if (o__valid && o__ready) begin
        if (o__payload !== out_mem[received]) begin
          errors = errors + 1;
          if (errors <= 5)
            $display("MISMATCH vector %0d: got %h, expected %h", received, o__payload,
                     out_mem[received]);
        end
        received = received + 1;
        if (received == N) begin
          if (errors == 0) $display("PASS %0d vectors", N);
          else $display("FAIL %0d of %0d vectors mismatched", errors, N);
          $finish;
        end
      end
      // The stream rules: valid stays up with a stable payload until the transfer.
      if (i__valid && i__ready) sent = sent + 1;
      if (!(i__valid && !i__ready)) begin
        i__valid <= (sent < N) && (lfsr[1] || lfsr[4]);
        if (sent < N) i__payload <= in_mem[sent];
      end
{o_ready_drive}      if (cycle > TIMEOUT) begin
        $display("FAIL timeout after %0d cycles: %0d sent, %0d received", cycle, sent, received);
        $finish;
      end
    end
  end
endmodule
"""


def _hex_lines(codec: PayloadCodec, rows) -> str:
    digits = max(1, -(-codec.width * (codec.lanes or 1) // 4))
    return "".join(f"{codec.pack(row):0{digits}x}\n" for row in rows)


def _ready_wiring(i_always_ready: bool, o_always_ready: bool) -> dict:
    """Template pieces for the ``ready`` signals: an ``always_ready`` stream has no ready port
    (the testbench sees a constant 1 and applies no backpressure to it)."""
    return {
        "i_ready_decl": "wire i__ready = 1'b1;" if i_always_ready else "wire i__ready;",
        "i_ready_port": "" if i_always_ready else ", .i__ready(i__ready)",
        "o_ready_decl": "wire o__ready = 1'b1;" if o_always_ready else "reg o__ready = 1'b0;",
        "o_ready_port": "" if o_always_ready else ", .o__ready(o__ready)",
        "o_ready_drive": "" if o_always_ready else "      o__ready <= lfsr[2] || lfsr[7];\n",
    }


def write_testbench(core, name: str, x_codes, y_codes, out_dir) -> dict:
    """Write ``<name>_tb.v``, ``<name>_in.hex`` and ``<name>_out.hex`` into ``out_dir``.

    ``x_codes``/``y_codes`` are the input and expected output codes, one row per vector (from
    the reference model). Returns the written paths by role.

    Raises
    ------
    ValueError
        No vectors, or input and output counts differ.
    """
    in_codec = PayloadCodec.for_shape(core.i.signature.members["payload"].shape)
    out_codec = PayloadCodec.for_shape(core.o.signature.members["payload"].shape)
    x_rows, y_rows = in_codec.rows(x_codes), out_codec.rows(y_codes)
    if len(x_rows) == 0 or len(x_rows) != len(y_rows):
        raise ValueError(f"a testbench needs the same positive number of input and expected "
                         f"output vectors, not {len(x_rows)} and {len(y_rows)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ii = getattr(core, "ii", 1) or 1
    latency = getattr(core, "latency", 0) or 0
    paths = {"testbench": out_dir / f"{name}_tb.v", "inputs": out_dir / f"{name}_in.hex",
             "expected": out_dir / f"{name}_out.hex"}
    paths["inputs"].write_text(_hex_lines(in_codec, x_rows))
    paths["expected"].write_text(_hex_lines(out_codec, y_rows))
    paths["testbench"].write_text(_TEMPLATE.format(
        name=name, count=len(x_rows), in_width=in_codec.width * (in_codec.lanes or 1),
        out_width=out_codec.width * (out_codec.lanes or 1),
        # Random gaps and backpressure each cost at most ~4x; leave generous room.
        timeout=int(1000 + 8 * (len(x_rows) * ii + latency)),
        **_ready_wiring(core.i.signature.always_ready, core.o.signature.always_ready)))
    return paths
