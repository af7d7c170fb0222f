import sys
from pathlib import Path

from amaranth.hdl import UnusedElaboratable

# Let tests import the shared helpers (oracle.py) next to them.
sys.path.insert(0, str(Path(__file__).parent))

# Amaranth keeps its "created but never used" warning silent until the first elaboration in a
# process, so whether a test that drops a core fails (filterwarnings = error) would depend on
# which tests ran before it. Report unused cores from the start, in every order.
UnusedElaboratable._MustUse__silence = False
