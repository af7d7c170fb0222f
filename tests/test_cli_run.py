"""`hwnn run`: vectors through a board's UART link, simulated or behind a serial port."""

import os
import pty
import threading

import pytest

from hwnn.board_run import simulated_board
from hwnn.cli import main
from hwnn.demo import write_dense_spec
from hwnn.spec import load_spec


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_simulated_is_bit_exact_and_names_the_bottleneck(capsys, tmp_path):
    spec = write_dense_spec(tmp_path)
    code, out, err = run(capsys, "run", spec, "--simulate", "--engine", "pysim",
                          "--vectors", 8)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "demo_fc: 8 vectors bit-exact over the simulated link (board == reference)"
    assert lines[1].startswith("link: 8 vectors in 1 frames, ")
    # 16 one-byte lanes in, at 3 Mbaud: the link, not a 12 MHz core of ii 16, limits the rate.
    assert lines[2].endswith("at 12 MHz: the link is the bottleneck")


class BoardOnPty:
    """A simulated board answering on the far end of a pseudo-terminal, as a USB serial
    adapter would: what the host writes to the port reaches the simulated UART pins."""

    def __init__(self, transport):
        self.transport = transport
        self.master, slave = pty.openpty()
        self.port = os.ttyname(slave)
        self._slave = slave
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        os.set_blocking(self.master, False)
        while not self._stop.is_set():
            try:
                self.transport.write(os.read(self.master, 4096))
            except BlockingIOError:
                pass
            reply = self.transport.read(4096, 0.0002)
            if reply:
                os.write(self.master, reply)

    def close(self):
        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self._slave)


def test_run_on_a_serial_port(capsys, tmp_path):
    pytest.importorskip("serial", reason="hwnn run --port needs pyserial (hwnn[board])")
    spec = write_dense_spec(tmp_path)
    board = BoardOnPty(simulated_board(load_spec(spec), engine="pysim"))
    try:
        code, out, err = run(capsys, "run", spec, "--port", board.port, "--vectors", 6,
                             "--timeout", 30)
    finally:
        board.close()
    assert code == 0, err
    assert out.startswith(f"demo_fc: 6 vectors bit-exact over the link on {board.port} ")


def test_run_errors(capsys, tmp_path):
    spec = write_dense_spec(tmp_path)
    code, _, err = run(capsys, "run", spec, "--simulate", "--baud", 5_000_000)
    assert code == 2
    assert err.endswith("hwnn: error: demo_fc: baud 5000000 needs at least 4 clock cycles per bit; "
                        "at 12 MHz the highest rate is 3000000 baud\n")
    code, _, err = run(capsys, "run", spec, "--simulate", "--timeout", 0)
    assert (code, err) == (2, "hwnn: error: --timeout must be a positive number of seconds, "
                              "not 0\n")
    code, _, err = run(capsys, "run", spec, "--port", "/dev/null", "--clock", 36)
    assert (code, err) == (2, "hwnn: error: --clock is for --simulate; a board on --port runs "
                              "at the clock it was built for\n")
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(spec)])
    assert exit_.value.code == 2
    assert "one of the arguments --port --simulate is required" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [
    ("--timeout", "nan", "--timeout must be a positive number of seconds, not nan"),
    ("--baud", 0, "--baud must be a positive integer, not 0"),
    ("--clock", -12, "--clock must be a positive number of MHz, not -12"),
])
def test_run_refuses_bad_numbers(capsys, tmp_path, option, value, message):
    spec = write_dense_spec(tmp_path)
    code, _, err = run(capsys, "run", spec, "--simulate", option, value)
    assert (code, err) == (2, f"hwnn: error: {message}\n")


@pytest.mark.parametrize("command", [["run", "--simulate"],
                                     ["build", "--board", "icebreaker", "-o", "out"]])
def test_a_network_with_initial_states_is_refused_for_the_link(capsys, tmp_path, command):
    from test_network_state import write_spec
    spec = write_spec(tmp_path)
    code, _, err = run(capsys, command[0], spec, *command[1:])
    assert (code, err) == (2, "hwnn: error: bi: the host link does not carry initial states "
                              "yet (layers with initial_state = true)\n")
