"""An LSTM/GRU network layer on the unrolled core (``cuts`` in the spec): the layer's options
pick :class:`UnrolledRecurrent`, for one direction and for both, exact with stalls and timed as
the network's schedule says; the fields it refuses."""

import numpy as np
import pytest

from hwnn.cores.recurrent_unrolled import UnrolledRecurrent
from hwnn.spec import SpecError, load_spec
from test_network_bidir import back_to_back, spec_text, state_dict, write


@pytest.mark.parametrize("kind, extra", [
    ("lstm", 'arith = "mcm"\ncuts = 1'),
    ("gru", 'arith = "csd"\ncuts = 0\nmethod = "lut"\nbidirectional = true'),
])
def test_a_layer_with_cuts_runs_on_the_unrolled_core(tmp_path, kind, extra):
    directions = 2 if "bidirectional" in extra else 1
    arrays = state_dict(kind, "rnn", hidden=3, inputs=2, directions=directions, seed=4)
    design = load_spec(write(tmp_path, spec_text(kind, extra), arrays))
    (layer,) = design.plan.layers
    core = design.build()
    (inner,) = core.cores
    cuts = layer.options["cuts"]
    directions_cores = inner.cores if directions == 2 else (inner,)
    for direction in directions_cores:
        assert isinstance(direction, UnrolledRecurrent) and direction.step_cycles == cuts + 1
    back_to_back(core, design.plan, [16, 5, 16, 1], seed=3)


@pytest.mark.parametrize("extra, field, message", [
    ("cuts = 1", "cuts", 'needs a shift-add MAC (arith = "mcm" or "csd")'),
    ('arith = "mcm"\ncuts = 1\nlanes = 2', "lanes", "does not apply with cuts"),
    ('arith = "mcm"\ncuts = 1\npipeline = 1', "pipeline", "does not apply with cuts"),
    ('arith = "mcm"\ncuts = -1', "cuts", "must be at least 0, not -1"),
    ('arith = "mcm"\ncuts = 7', "cuts", "cuts must be an integer between 0 and 6, not 7"),
])
def test_fields_the_unrolled_core_refuses(tmp_path, extra, field, message):
    arrays = state_dict("lstm", "rnn", hidden=2, inputs=2)
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, spec_text("lstm", extra), arrays))
    assert info.value.field.endswith(field), (info.value.field, str(info.value))
    assert message in str(info.value)
