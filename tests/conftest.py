import os
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.hdl import UnusedElaboratable

from hwnn.synth.toolchain import is_compiled, tool_path

# Let tests import the shared helpers (oracle.py) next to them.
sys.path.insert(0, str(Path(__file__).parent))

# Amaranth keeps its "created but never used" warning silent until the first elaboration in a
# process, so whether a test that drops a core fails (filterwarnings = error) would depend on
# which tests ran before it. Report unused cores from the start, in every order.
UnusedElaboratable._MustUse__silence = False

#: The YoWASP tools the suite runs (synthesis, place-and-route, bitstreams, CXXRTL).
YOWASP_TOOLS = ("yosys", "nextpnr-ice40", "icepack", "nextpnr-ecp5", "ecppack")


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config):
    """Run the suite on one pytest-xdist worker per logical CPU unless the command line says
    how (``-n``, ``--dist`` or ``--tx``), with work stealing: a worker that runs out of tests
    takes half of another's, so the few minute-long tests do not leave a core idle at the end.

    A selection by ``-k`` or by test id (``file.py::test``) runs in one process too: each
    worker collects the whole suite first (about 6 s of CPU), which would double the start of a
    run of a few tests; ``-n 2`` parallelizes one anyway.

    Set here rather than in ``addopts`` so that ``-p no:xdist`` (which would reject an ``-n``)
    still runs in one process; so do ``-n 0`` and ``--pdb``. A wrapper, so it runs before
    xdist's own hook turns these options into workers.
    """
    option = config.option
    # A worker (workerinput) is told dist "no" by its controller: it must not start workers.
    if (config.pluginmanager.has_plugin("xdist") and not hasattr(config, "workerinput")
            and option.numprocesses is None and option.dist == "no" and not option.tx
            and not option.keyword and not any("::" in arg for arg in config.args)):
        option.numprocesses = "logical"   # the physical core count where psutil is installed
        option.dist = "worksteal"
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """Under pytest-xdist, have YoWASP compile its tools before the workers start.

    YoWASP compiles a tool on its first run on a machine and writes the cache file in place
    (no temporary file and rename): two workers doing it at once compile it twice (about 40 s
    of both cores each), and a worker that maps the half-written or rewritten file can read a
    truncated module. So the controller runs each tool that is not compiled yet once, all at
    once (each tool is its own cache file); when all are compiled this costs only their hashes.
    """
    if not session.config.pluginmanager.has_plugin("dsession"):  # not distributing
        return
    missing = [tool for tool in YOWASP_TOOLS if is_compiled(tool) is False]
    processes = [subprocess.Popen([str(tool_path(tool)), "--version"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for tool in missing]
    for process in processes:
        process.wait()   # a tool without --version fails after compiling, which is enough


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory):
    """Compiled simulation models go to a cache of this test run (HWNN_CACHE_DIR), not the
    user's: every build in the run compiles for real, and nothing stays behind.

    Under pytest-xdist the workers share one cache in the run's base directory (each worker's
    own is a subdirectory of it), so a model is compiled once per run, not once per worker;
    ``hwnn.sim.compiled.cached_build`` builds in a private directory and renames it into place,
    so two workers building the same model at once both succeed.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        directory = tmp_path_factory.getbasetemp().parent / "hwnn-cache"
        directory.mkdir(exist_ok=True)
    else:
        directory = tmp_path_factory.mktemp("hwnn-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HWNN_CACHE_DIR", str(directory))
        yield directory
