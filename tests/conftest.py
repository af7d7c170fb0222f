import sys
from pathlib import Path

import pytest
from amaranth.hdl import UnusedElaboratable

# Let tests import the shared helpers (oracle.py) next to them.
sys.path.insert(0, str(Path(__file__).parent))

# Amaranth keeps its "created but never used" warning silent until the first elaboration in a
# process, so whether a test that drops a core fails (filterwarnings = error) would depend on
# which tests ran before it. Report unused cores from the start, in every order.
UnusedElaboratable._MustUse__silence = False


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory):
    """Compiled simulation models go to a cache of this session (HWNN_CACHE_DIR), not the
    user's: every build in the suite compiles for real, and nothing stays behind."""
    directory = tmp_path_factory.mktemp("hwnn-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HWNN_CACHE_DIR", str(directory))
        yield directory
