# amaranth: UnusedElaboratable=no
"""The host link: framing in Python, the UART, and the whole bridge simulated through its pins."""

from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwnn.board_run import run_on_board, simulated_board
from hwnn.boards.bridge import UartBridge, design_id
from hwnn.boards.host import Host, LinkError
from hwnn.boards.protocol import (CRC, END, ESC, BoardInfo, Error, FrameDecoder, Kind,
                                  encode_frame, frame_body, pack_rows, unpack_rows)
from hwnn.boards.simulated import SimulatedTransport
from hwnn.boards.uart import UartRx, UartTx, baud_divisor
from hwnn.demo import write_dense_spec
from hwnn.flow import input_codes
from hwnn.sim import PayloadCodec
from hwnn.spec import load_spec

CLOCK = 12_000_000
TIMEOUT_CYCLES = 3000


class Step(wiring.Component):
    """out = (in0 + 1, in1 - 1) for lanes of ``bits`` bits, one cycle of latency; a stand-in
    core whose every row is easy to predict."""

    def __init__(self, bits=8):
        self.bits = bits
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(signed(bits), 2))),
                          "o": Out(stream.Signature(data.ArrayLayout(signed(bits + 1), 2)))})

    def elaborate(self, platform):
        m = Module()
        free = self.o.ready | ~self.o.valid
        with m.If(free):
            m.d.sync += [self.o.valid.eq(self.i.valid),
                         self.o.payload[0].eq(self.i.payload[0] + 1),
                         self.o.payload[1].eq(self.i.payload[1] - 1)]
        m.d.comb += self.i.ready.eq(free)
        return m


def _codecs(core):
    return (PayloadCodec.for_shape(core.i.signature.members["payload"].shape),
            PayloadCodec.for_shape(core.o.signature.members["payload"].shape))


def _board(bits=8, **kw):
    core = Step(bits)
    kw.setdefault("timeout_cycles", TIMEOUT_CYCLES)
    bridge = UartBridge(core, clock_hz=CLOCK, baud=3_000_000, **kw)
    return SimulatedTransport(bridge, gap_cycles=2 * TIMEOUT_CYCLES), _codecs(core)


def _frames(transport, count, timeout=0.01):
    """The next ``count`` frames from the board (fewer if it goes quiet for ``timeout``)."""
    decoder, frames = FrameDecoder(), []
    while len(frames) < count:
        chunk = transport.read(4096, timeout)
        if not chunk:
            break
        frames += decoder.feed(chunk)
    return frames


def _infer_frame(codec, rows):
    return encode_frame(Kind.INFER, pack_rows(codec, np.asarray(rows)))


def _replies(transport, rows_wanted, codec_out, errors=0, timeout=0.01):
    """Frames from the board until ``rows_wanted`` result rows, an ACK and ``errors`` error
    replies have come (or it goes quiet for ``timeout``): (frames, result rows)."""
    decoder, frames = FrameDecoder(), []

    def done():
        rows = _result_bytes(frames) // _row(codec_out)
        return (rows >= rows_wanted and any(f.kind == Kind.ACK for f in frames)
                and sum(f.kind == Kind.ERROR for f in frames) >= errors)
    while not done():
        chunk = transport.read(4096, timeout)
        if not chunk:
            break
        frames += decoder.feed(chunk)
    assert all(f.good for f in frames)
    results = b"".join(f.payload for f in frames if f.kind == Kind.RESULT)
    return frames, unpack_rows(codec_out, results)


def _row(codec):
    return (codec.bits + 7) // 8


def _result_bytes(frames):
    return sum(len(f.payload) for f in frames if f.kind == Kind.RESULT)


def _expect_rows(transport, codec_out, rows):
    """The board answers one good INFER frame of ``rows`` with their results and an ACK."""
    frames, got = _replies(transport, len(rows), codec_out)
    assert [f.kind for f in frames].count(Kind.ACK) == 1
    np.testing.assert_array_equal(got, np.asarray(rows) + [1, -1])


# --- protocol ------------------------------------------------------------------------------

def test_crc_is_iso_hdlc():
    # The catalogue's check value of CRC-16/ISO-HDLC (X.25) for the ASCII digits 1 to 9.
    assert CRC.compute(b"123456789") == 0x906E


def test_frames_escape_and_decode():
    payload = bytes([END, ESC, 0, 0xFF, END])
    wire = encode_frame(Kind.INFER, payload)
    assert wire[0] == END and wire[-1] == END and END not in wire[1:-1]
    assert len(wire) == len(frame_body(Kind.INFER, payload)) + 2 + 3   # three escapes
    frames = FrameDecoder().feed(b"\x07" + wire + wire[:5] + wire)
    assert [f.good for f in frames] == [False, True, False, True]
    assert frames[1].kind == Kind.INFER and frames[1].payload == payload


def test_decoder_finds_bad_crc_and_length():
    body = bytearray(frame_body(Kind.RESULT, b"\x01\x02"))
    body[3] ^= 1
    assert FrameDecoder().feed(bytes([END, *body, END]))[0].problem == "bad CRC"
    body = frame_body(Kind.RESULT, b"\x01\x02")
    short = body[:1] + b"\x01\x00" + body[3:]
    assert "length field 1" in FrameDecoder().feed(bytes([END, *short, END]))[0].problem


def test_rows_pack_little_endian_and_refuse_padding():
    codec = PayloadCodec.for_shape(data.ArrayLayout(signed(6), 2))
    packed = pack_rows(codec, np.array([[-1, 1], [5, -32]]))
    assert packed == bytes([0x7F, 0x00, 0x05, 0x08])
    np.testing.assert_array_equal(unpack_rows(codec, packed), [[-1, 1], [5, -32]])
    with pytest.raises(ValueError, match="bits set above its 12-bit payload"):
        unpack_rows(codec, bytes([0, 0x10]))


def test_board_info_round_trip():
    info = BoardInfo(in_bits=9, out_bits=18, capacity=512, window=2, batch=16, clock_hz=CLOCK,
                     baud=3_000_000, design_id=0xDEADBEEF)
    assert BoardInfo.from_payload(info.payload()) == info
    assert info.max_rows == 128
    with pytest.raises(ValueError, match="21 bytes, not 3"):
        BoardInfo.from_payload(b"abc")


# --- UART ----------------------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, 5])
def test_uart_sends_and_receives_every_byte(divisor):
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    received, sent_at = [], []

    async def bench(ctx):
        for byte in range(256):
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            while True:
                ready = ctx.get(tx.i.ready)
                await ctx.tick()
                if ready:
                    break
            sent_at.append(byte)
            ctx.set(tx.i.valid, 0)
        for _ in range(12 * divisor):
            await ctx.tick()

    async def listen(ctx):
        async for _, _, valid, payload in ctx.tick().sample(rx.o.valid, rx.o.payload):
            if valid:
                received.append((payload.data, payload.error))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(listen)
    sim.run()
    assert received == [(byte, 0) for byte in range(256)]


def test_baud_divisor_errors():
    assert baud_divisor(12_000_000, 3_000_000) == 4
    assert baud_divisor(25_000_000, 115_200) == 217
    with pytest.raises(ValueError, match="at least 4 clock cycles per bit; at 12 MHz the "
                                         "highest rate is 3000000 baud"):
        baud_divisor(12_000_000, 4_000_000)
    with pytest.raises(ValueError, match=r"nearest rate 2777778 \(divisor 9\) is off by 2.9 %"):
        baud_divisor(25_000_000, 2_700_000)
    with pytest.raises(TypeError, match="baud must be an integer, not 3.0"):
        baud_divisor(12_000_000, 3.0)


# --- the bridge through its pins -----------------------------------------------------------

def test_info_reply_describes_the_bridge():
    transport, _ = _board(capacity=64, window=4)
    host = Host(transport, clock=lambda: transport.seconds)
    info = host.info()
    assert info == BoardInfo(in_bits=16, out_bits=18, capacity=64, window=4, batch=16,
                             clock_hz=CLOCK, baud=3_000_000, design_id=0)


def test_rows_come_back_in_order_with_escapes():
    transport, (codec_in, codec_out) = _board()
    # -64 is 0xC0 (END) and -37 0xDB (ESC): both must be escaped on the way in.
    rows = [[-64, -37], [127, -128], [0, 0], [-37, -64]]
    transport.write(_infer_frame(codec_in, rows))
    _expect_rows(transport, codec_out, rows)


@pytest.mark.parametrize("batch", [1, 8])
def test_results_share_frames_when_the_core_runs_ahead(batch):
    transport, (codec_in, codec_out) = _board(capacity=128, batch=batch)
    rows = [[k, 3 * k] for k in range(-20, 20)]
    transport.write(_infer_frame(codec_in, rows))
    frames, got = _replies(transport, len(rows), codec_out)
    np.testing.assert_array_equal(got, np.asarray(rows) + [1, -1])
    sizes = [len(f.payload) // 3 for f in frames if f.kind == Kind.RESULT]
    assert sum(sizes) == len(rows) and max(sizes) <= batch
    # The link is far slower than the core: rows pile up while a frame goes out, so all but
    # the first frames are full.
    assert sizes.count(batch) >= len(rows) // batch - 1


@pytest.mark.parametrize("name, make, code", [
    ("crc", lambda f: f[:4] + bytes([f[4] ^ 0x01]) + f[5:], Error.CRC),
    ("short body", lambda f: bytes([END, Kind.INFER, 4, END]), Error.LENGTH),
    ("length field", lambda f: encode_frame(Kind.INFER, b"\x01\x02\x03"), Error.LENGTH),
    ("zero rows", lambda f: encode_frame(Kind.INFER, b""), Error.LENGTH),
    ("over capacity", lambda f: encode_frame(Kind.INFER, bytes(66)), Error.LENGTH),
    ("kind", lambda f: encode_frame(0x55, b"\x01\x02"), Error.KIND),
    ("info with payload", lambda f: encode_frame(Kind.INFO, b"\x00"), Error.LENGTH),
    ("escape", lambda f: f[:4] + bytes([ESC, 0x00]) + f[5:], Error.ESCAPE),
    ("garbage", lambda f: bytes([0x13, 0x37, END]), Error.LENGTH),
])
def test_bad_frames_get_an_error_and_the_next_good_frame_works(name, make, code):
    transport, (codec_in, codec_out) = _board(capacity=64)
    good = _infer_frame(codec_in, [[1, 2], [3, 4]])
    transport.write(make(good))
    frames = _frames(transport, 1)
    assert [(f.good, f.kind, f.payload) for f in frames] == [(True, Kind.ERROR, bytes([code]))]
    transport.write(good)
    _expect_rows(transport, codec_out, [[1, 2], [3, 4]])


def test_padding_bits_are_refused():
    transport, (codec_in, codec_out) = _board(bits=6)
    transport.write(encode_frame(Kind.INFER, bytes([0x01, 0x10])))   # bit 12 of a 12-bit row
    assert [f.payload for f in _frames(transport, 1)] == [bytes([Error.PADDING])]
    transport.write(_infer_frame(codec_in, [[-32, 31]]))
    _expect_rows(transport, codec_out, [[-32, 31]])


def test_timeout_and_break_mid_frame():
    transport, (codec_in, codec_out) = _board()
    good = _infer_frame(codec_in, [[5, 6]])
    transport.write(good[:5])
    transport.gap()              # longer than the bridge's timeout
    transport.write(good[:4])
    transport.line_break()       # a byte without its stop bit
    transport.write(good)
    frames = _frames(transport, 4)
    kinds = [(f.kind, f.payload) for f in frames if f.kind == Kind.ERROR]
    assert kinds == [(Kind.ERROR, bytes([Error.TIMEOUT])), (Kind.ERROR, bytes([Error.LINE]))]
    results = [f.payload for f in frames if f.kind == Kind.RESULT]
    np.testing.assert_array_equal(unpack_rows(codec_out, b"".join(results)), [[6, 5]])


def test_a_frame_beyond_the_window_is_busy():
    # One result row in flight: the core waits on the link, so the first frame's rows stay in
    # the buffer while the second frame arrives.
    transport, (codec_in, codec_out) = _board(capacity=64, window=1, batch=1)
    first = [[k, -k] for k in range(16)]
    transport.write(_infer_frame(codec_in, first) + _infer_frame(codec_in, [[9, 9]]))
    frames, got = _replies(transport, len(first), codec_out, errors=1)
    errors = [f.payload for f in frames if f.kind == Kind.ERROR]
    assert errors == [bytes([Error.BUSY])]
    np.testing.assert_array_equal(got, np.array(first) + [1, -1])


def test_garbage_never_locks_the_bridge():
    transport, (codec_in, codec_out) = _board(capacity=64)
    noise = np.random.default_rng(5).integers(0, 256, 300, dtype=np.uint8).tobytes()
    transport.write(noise)
    transport.gap()
    decoder, replies = FrameDecoder(), []
    while chunk := transport.read(4096, 0.002):
        replies += decoder.feed(chunk)
    # Whatever the noise held, every reply is a well-formed frame and none is a result.
    assert replies and all(f.good and f.kind == Kind.ERROR for f in replies)
    rows = [[7, -7], [100, -100]]
    transport.write(_infer_frame(codec_in, rows))
    _expect_rows(transport, codec_out, rows)


def test_host_reports_an_error_reply():
    transport, (codec_in, _) = _board()
    host = Host(transport, timeout=0.01, clock=lambda: transport.seconds)
    transport.write(encode_frame(0x55))
    with pytest.raises(LinkError, match=r"refused a frame: error 4 \(unknown frame kind\)"):
        host.info()


def test_bridge_parameter_errors():
    with pytest.raises(ValueError, match="capacity must be a power of two"):
        UartBridge(Step(), clock_hz=CLOCK, capacity=100)
    with pytest.raises(ValueError, match="capacity 2 bytes holds fewer than window = 2 rows"):
        UartBridge(Step(), clock_hz=CLOCK, capacity=2)
    with pytest.raises(ValueError, match="window must be at most 255 frames, not 256"):
        UartBridge(Step(), clock_hz=CLOCK, capacity=1024, window=256)
    with pytest.raises(ValueError, match="design_id must be a 32-bit unsigned integer"):
        UartBridge(Step(), clock_hz=CLOCK, design_id=-1)
    with pytest.raises(TypeError, match="core must be a Component with input stream i"):
        UartBridge(object(), clock_hz=CLOCK)


# --- specs over the link -------------------------------------------------------------------

def test_dense_spec_is_bit_exact_over_the_link(tmp_path):
    design = load_spec(write_dense_spec(tmp_path))
    x = input_codes(design, vectors=12, seed=3)
    run = run_on_board(design, x, simulated_board(design, engine="pysim"))
    assert run.simulation.exact, run.simulation.mismatch()
    assert run.stats.rows_in == run.stats.rows_out == 12
    assert run.info.design_id == design_id(design.build())


def test_a_board_with_another_design_is_refused(tmp_path):
    design = load_spec(write_dense_spec(tmp_path))
    transport, _ = _board()
    with pytest.raises(LinkError, match="the board holds another design"):
        run_on_board(design, input_codes(design, vectors=2), transport)


def test_activation_spec_is_bit_exact_over_the_link(tmp_path):
    (tmp_path / "a.toml").write_text(
        '[core]\nkind = "activation"\nname = "a"\n[params]\nfunction = "tanh"\n'
        'method = "pwl"\nsegments = 8\nin_format = "SQ(3,6)"\nout_format = "SQ(1,9)"\n')
    design = load_spec(tmp_path / "a.toml")
    # 9-bit input rows (two bytes, seven padding bits), 10-bit results.
    x = input_codes(design, vectors=16, seed=4)
    run = run_on_board(design, x, simulated_board(design, engine="pysim"))
    assert run.simulation.exact, run.simulation.mismatch()
    assert (run.info.in_bits, run.info.out_bits) == (9, 10)


def test_network_spec_is_bit_exact_over_the_link(tmp_path):
    from test_network import write_spec
    design = load_spec(write_spec(tmp_path))
    x = input_codes(design, vectors=10, seed=6)
    run = run_on_board(design, x, simulated_board(design, capacity=64, engine="pysim"))
    assert run.simulation.exact, run.simulation.mismatch()
    # 64 bytes over a window of 2 frames: 4 rows of 8 bytes per frame, so 10 rows take 3.
    assert run.stats.frames == 3
