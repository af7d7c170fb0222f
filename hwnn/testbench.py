"""A self-checking Verilog testbench for an exported core, with vectors from its reference.

The testbench needs nothing from hwnn: it reads ``<name>_in.hex`` and ``<name>_out.hex``
(one packed payload per line, element 0 in the least significant bits), looking for them
beside itself (through ```__FILE__``, the path the simulator was given), then in the directory
hwnn wrote them to, then in the working directory, so it runs from any working directory. It
drives ``i`` with pseudo-random gaps and ``o.ready`` with pseudo-random backpressure (a 16-bit
LFSR), holds any other input at 0, and compares every output with the expected value. It prints
``PASS <n> vectors`` and exits with status 0, or stops with ``$fatal`` on any mismatch (``FAIL
...``, after up to five ``MISMATCH`` lines), on a timeout, or when a vector file does not open.
It is Verilog-2005 plus ```__FILE__`` and ``$fatal``: Icarus Verilog's ``vvp`` then exits with
status 1, and a Verilator ``--binary`` build aborts (SIGABRT, status 134 in a shell).
"""

from __future__ import annotations

from pathlib import Path

from .export import check_module_name, port_table
from .sim.payload import PayloadCodec

__all__ = ["write_testbench"]

# Longest file path the testbench handles, in bytes (Verilator prints at most 8192 bits at once).
_PATH_CHARS = 1000

# No `timescale: the exported module has none, and Verilator stops (TIMESCALEMOD) when only some
# modules have one. Delays are in the simulator's default unit.
_TEMPLATE = """\
// Self-checking testbench for {name}, written by hwnn. Vectors come from hwnn's reference model.
// Exits 0 after "PASS"; stops with $fatal (a non-zero exit status) on a mismatch, a timeout or
// a vector file that does not open.
// Counters are updated with blocking assignments on purpose: a check reads the updated count in
// the same clock edge. The clock, too, is a blocking toggle.
/* verilator lint_off BLKSEQ */
module {name}_tb;
  localparam integer N_IN = {in_count};
  localparam integer N = {count};  // expected outputs
  localparam integer IW = {in_width};
  localparam integer OW = {out_width};
  localparam integer TIMEOUT = {timeout};
  // Longest file path handled, in characters.
  localparam integer PATH = {path_chars};

  // Start values in initial statements, not declarations (Verilator's PROCASSINIT).
  reg clk;
  initial clk = 1'b0;
  reg rst;
  initial rst = 1'b1;
  reg [IW-1:0] in_mem [0:N_IN-1];
  reg [OW-1:0] out_mem [0:N-1];
  reg [IW-1:0] i__payload;
  initial i__payload = {{IW{{1'b0}}}};
  reg i__valid;
  initial i__valid = 1'b0;
  {i_ready_decl}
  wire [OW-1:0] o__payload;
  wire o__valid;
  {o_ready_decl}
{other_decls}  integer sent, received, errors, cycle;
  initial begin sent = 0; received = 0; errors = 0; cycle = 0; end
  reg [15:0] lfsr;
  initial lfsr = 16'hACE1;

  {name} dut (
    .clk(clk), .rst(rst),
    .i__payload(i__payload), .i__valid(i__valid){i_ready_port},
    .o__payload(o__payload), .o__valid(o__valid){o_ready_port}{other_ports}
  );

  always #5 clk = ~clk;

  // The vector files are looked for, in this order: beside this testbench (`__FILE__ is its
  // path as the simulator was given it, absolute or relative to the working directory), in the
  // directory hwnn wrote them to, and in the working directory.
  reg [8*PATH-1:0] here;
  reg [8*PATH-1:0] written_to;  // a reg: Icarus prints a wide string parameter as empty
  reg [8*PATH-1:0] in_path;
  reg [8*PATH-1:0] out_path;
  integer name_chars;
  integer k;

  // `path` := the first place where the file `file_name` (`chars` characters) opens.
  task find_file(output [8*PATH-1:0] path, input [8*PATH-1:0] file_name, input integer chars);
    integer fd;
    begin
      path = (here << (8 * chars)) | file_name;
      fd = $fopen(path, "r");
      if (fd == 0) begin
        path = (written_to << (8 * chars)) | file_name;
        fd = $fopen(path, "r");
      end
      if (fd == 0) begin
        path = file_name;
        fd = $fopen(path, "r");
      end
      if (fd == 0)
        $fatal(1, "cannot open %0s beside %0s, in %0s or in the working directory",
               file_name, `__FILE__, written_to);
      $fclose(fd);
    end
  endtask

  initial begin
    // The directory part of `__FILE__, up to its last '/' (or '\\\\'); 0 if there is none.
    here = `__FILE__;
    name_chars = PATH;  // characters after the last '/', counted from the right
    for (k = PATH - 1; k >= 0; k = k - 1)
      if (here[8*k +: 8] == "/" || here[8*k +: 8] == "\\\\") name_chars = k;
    here = name_chars < PATH ? here >> (8 * name_chars) : 0;
    written_to = "{written_to}";
    find_file(in_path, "{name}_in.hex", {in_chars});
    find_file(out_path, "{name}_out.hex", {out_chars});
    $readmemh(in_path, in_mem);
    $readmemh(out_path, out_mem);
    repeat (3) @(posedge clk);
    @(negedge clk) rst = 1'b0;  // between edges: no race with the clocked blocks
  end

  always @(posedge clk) begin
    if (!rst) begin
      cycle <= cycle + 1;
      lfsr <= {{lfsr[14:0], lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]}};
      if (o__valid && o__ready) begin
        // !== also counts an x or z bit, and an expected value the file did not define.
        if (o__payload !== out_mem[received]) begin
          errors = errors + 1;
          if (errors <= 5)
            $display("MISMATCH vector %0d: got %h, expected %h", received, o__payload,
                     out_mem[received]);
        end
        received = received + 1;
        if (received == N) begin
          if (errors != 0) $fatal(1, "FAIL %0d of %0d vectors mismatched", errors, N);
          $display("PASS %0d vectors", N);
          $finish;
        end
      end
      // The stream rules: valid stays up with a stable payload until the transfer.
      if (i__valid && i__ready) sent = sent + 1;
      if (!(i__valid && !i__ready)) begin
        i__valid <= (sent < N_IN) && (lfsr[1] || lfsr[4]);
        if (sent < N_IN) i__payload <= in_mem[sent];
      end
{o_ready_drive}      if (cycle > TIMEOUT)
        $fatal(1, "FAIL timeout after %0d cycles: %0d sent, %0d received", cycle, sent,
               received);
    end
  end
endmodule
"""


def _verilog_string(text: str) -> str:
    """``text`` escaped for a Verilog string literal (between its quotes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _written_to(out_dir: Path, paths: dict) -> str:
    """The absolute directory of the vector files (with its ``/``) as the testbench spells it;
    empty if a path would not fit the testbench's path registers."""
    directory = f"{out_dir.resolve()}/"
    longest = max(len(str(paths[role].name)) for role in ("inputs", "expected"))
    if len(directory.encode()) + longest > _PATH_CHARS:
        return ""
    return _verilog_string(directory)


def _hex_lines(codec: PayloadCodec, rows) -> str:
    digits = max(1, -(-codec.bits // 4))
    return "".join(f"{codec.pack(row):0{digits}x}\n" for row in rows)


def _ready_wiring(i_always_ready: bool, o_always_ready: bool) -> dict:
    """Template pieces for the ``ready`` signals: an ``always_ready`` stream has no ready port
    (the testbench sees a constant 1 and applies no backpressure to it)."""
    return {
        "i_ready_decl": "wire i__ready = 1'b1;" if i_always_ready else "wire i__ready;",
        "i_ready_port": "" if i_always_ready else ", .i__ready(i__ready)",
        "o_ready_decl": ("wire o__ready = 1'b1;" if o_always_ready
                         else "reg o__ready;\n  initial o__ready = 1'b0;"),
        "o_ready_port": "" if o_always_ready else ", .o__ready(o__ready)",
        "o_ready_drive": "" if o_always_ready else "      o__ready <= lfsr[2] || lfsr[7];\n",
    }


def _other_wiring(core) -> dict:
    """Template pieces for the ports besides ``clk``, ``rst``, ``i`` and ``o`` (a shift_mac's
    ``i_weight``): inputs held at 0, so another input stream stays idle (valid low) and the
    core runs with what it was built with, except a network's initial-state streams
    (``i_state_<layer>``), which offer a zero state all the time (valid high), the reference's
    default; outputs connected to unread wires."""
    others = [port for port in port_table(core)
              if port["name"] not in ("clk", "rst")
              and not port["name"].startswith(("i__", "o__"))]
    held = {port["name"]: "1'b1" if port["name"].startswith("i_state_")
            and port["name"].endswith("__valid") else "0" for port in others}
    decls = "".join(
        f"  wire [{port['width'] - 1}:0] {port['name']} = {held[port['name']]};\n"
        if port["direction"] == "in"
        else (f"  /* verilator lint_off UNUSEDSIGNAL */  // not checked by this testbench\n"
              f"  wire [{port['width'] - 1}:0] {port['name']};\n"
              f"  /* verilator lint_on UNUSEDSIGNAL */\n")
        for port in others)
    ports = "".join(f",\n    .{port['name']}({port['name']})" for port in others)
    return {"other_decls": decls, "other_ports": ports}


def write_testbench(core, name: str, x_codes, y_codes, out_dir, *, cycles=None) -> dict:
    """Write ``<name>_tb.v``, ``<name>_in.hex`` and ``<name>_out.hex`` into ``out_dir``.

    ``x_codes``/``y_codes`` are the input and expected output codes, one row per vector (from
    the reference model; a dict of ``data`` and ``last`` for a framed stream). A core that does
    not give one output per input (a network over sequences) passes ``cycles``, the cycles an
    unstalled run needs at most: then the counts may differ, and the timeout follows from it. Inputs other than ``i`` (a shift_mac's ``i_weight``) are held at 0:
    the expected codes must be those of the core as built (its initial weights). Returns the
    written paths by role.

    Raises
    ------
    ParameterTypeError, ParameterValueError
        ``name`` is not a usable module name (see :func:`hwnn.export.check_module_name`).
    ValueError
        No vectors, or input and output counts differ (without ``cycles``).
    """
    check_module_name(name)
    in_codec = PayloadCodec.for_shape(core.i.signature.members["payload"].shape)
    out_codec = PayloadCodec.for_shape(core.o.signature.members["payload"].shape)
    x_rows, y_rows = in_codec.rows(x_codes), out_codec.rows(y_codes)
    if cycles is None and (len(x_rows) == 0 or len(x_rows) != len(y_rows)):
        raise ValueError(f"a testbench needs the same positive number of input and expected "
                         f"output vectors, not {len(x_rows)} and {len(y_rows)}")
    if cycles is not None and (len(x_rows) == 0 or len(y_rows) == 0):
        raise ValueError(f"a testbench needs input and expected output rows, not "
                         f"{len(x_rows)} and {len(y_rows)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ii = getattr(core, "ii", 1) or 1
    latency = getattr(core, "latency", 0) or 0
    paths = {"testbench": out_dir / f"{name}_tb.v", "inputs": out_dir / f"{name}_in.hex",
             "expected": out_dir / f"{name}_out.hex"}
    paths["inputs"].write_text(_hex_lines(in_codec, x_rows))
    paths["expected"].write_text(_hex_lines(out_codec, y_rows))
    paths["testbench"].write_text(_TEMPLATE.format(
        name=name, in_count=len(x_rows), count=len(y_rows), path_chars=_PATH_CHARS,
        written_to=_written_to(out_dir, paths), in_chars=len(paths["inputs"].name),
        out_chars=len(paths["expected"].name), in_width=in_codec.bits,
        out_width=out_codec.bits,
        # Random gaps and backpressure each cost at most ~4x; leave generous room.
        timeout=int(1000 + 8 * (len(x_rows) * ii + latency) if cycles is None
                    else 1000 + 8 * cycles),
        **_ready_wiring(core.i.signature.always_ready, core.o.signature.always_ready),
        **_other_wiring(core)))
    return paths
