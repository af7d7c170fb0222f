import json

import pytest

from hwnn.synth import SynthReport, format_table
from hwnn.synth.report import (classification_notes, classify_cells, lut_sites, parse_pnr_report,
                               parse_stat, percentages)


@pytest.mark.parametrize("family, cells, counts", [
    ("ice40", {"SB_LUT4": 10, "SB_CARRY": 7, "SB_DFF": 3, "SB_DFFESR": 4, "SB_MAC16": 1,
               "SB_RAM40_4K": 2, "SB_RAM40_4KNR": 1},
     dict(luts=10, carries=7, ffs=7, dsps=1, brams=3)),
    ("ecp5", {"LUT4": 20, "CCU2C": 5, "TRELLIS_FF": 9, "MULT18X18D": 2, "ALU54B": 1,
              "DP16KD": 1, "PDPW16KD": 2, "TRELLIS_DPR16X4": 3, "PFUMX": 4},
     dict(luts=20, carries=5, ffs=9, dsps=3, brams=3)),
    ("xc7", {"LUT1": 1, "LUT2": 2, "LUT6": 3, "CARRY4": 2, "FDRE": 5, "FDSE": 1,
             "DSP48E1": 1, "RAMB18E1": 1, "RAMB36E1": 1, "MUXF7": 2},
     dict(luts=6, carries=2, ffs=6, dsps=1, brams=2)),
    ("gowin", {"LUT1": 1, "LUT4": 4, "ALU": 9, "DFFR": 3, "DFFE": 2, "MULT9X9": 1,
               "MULT18X18": 1, "SP": 1, "DPX9B": 1, "pROM": 1, "SDPX9": 1, "GND": 1, "VCC": 1},
     dict(luts=5, carries=9, ffs=5, dsps=2, brams=4)),
])
def test_classify_cells(family, cells, counts):
    classification = classify_cells(family, {**cells, "$scopeinfo": 1})
    assert classification.counts == counts
    assert classification.unclassified == {}


def test_unclassified_cells_are_kept_and_named():
    classification = classify_cells("ice40", {"SB_LUT4": 3, "SB_SPRAM256KA": 2, "WEIRD": 1})
    assert classification.unclassified == {"SB_SPRAM256KA": 2, "WEIRD": 1}
    assert classification.counts["luts"] == 3
    assert classification_notes("ice40", classification) == [
        "unclassified ice40 cells (not counted in any category): 2 SB_SPRAM256KA, 1 WEIRD"]


def test_lut_ram_and_wide_muxes_are_noted():
    classification = classify_cells("ecp5", {"LUT4": 3, "TRELLIS_DPR16X4": 2, "L6MUX21": 1})
    assert classification.by_category["lutram"] == {"TRELLIS_DPR16X4": 2}
    notes = classification_notes("ecp5", classification)
    assert notes[0].startswith("distributed-RAM (LUT RAM) cells 2 TRELLIS_DPR16X4")
    assert notes[1].startswith("wide-function mux cells 1 L6MUX21")


def test_classify_unknown_family():
    with pytest.raises(ValueError, match=r"^Unknown FPGA family 'ice41'; known families are: "
                                         r"ice40, ecp5, xc7, gowin$"):
        classify_cells("ice41", {})


def test_lut_sites_counts_ecp5_carries_and_lut_ram():
    cells = {"LUT4": 10, "CCU2C": 3, "TRELLIS_DPR16X4": 1}
    assert lut_sites("ecp5", cells, 10) == 10 + 2 * 3 + 4
    assert lut_sites("ice40", {"SB_LUT4": 10, "SB_CARRY": 3}, 10) == 10


STAT = """{
   "creator": "Yosys 0.70",
   "modules": {
      "\\\\top": {"num_cells": 3, "num_cells_by_type": {"SB_LUT4": 2, "SB_DFF": 1}},
      "\\\\sub": {"num_cells": 1, "num_cells_by_type": {"SB_LUT4": 1}}
   },
      "design": {"num_cells": 4, "num_cells_by_type": {"SB_LUT4": 3, "SB_DFF": 1}}
}"""


def test_parse_stat_reads_the_design_summary():
    assert parse_stat(STAT) == {"SB_LUT4": 3, "SB_DFF": 1}


def test_parse_stat_single_module_without_summary():
    text = json.dumps({"modules": {"\\top": {"num_cells_by_type": {"LUT4": 5}}}})
    assert parse_stat(text) == {"LUT4": 5}


def test_parse_stat_errors():
    with pytest.raises(ValueError, match=r"^yosys stat output is not JSON: Expecting value: "
                                         r"line 1 column 1 \(char 0\)$"):
        parse_stat("Printing statistics.")
    two = json.dumps({"modules": {"\\a": {}, "\\b": {}}})
    with pytest.raises(ValueError, match=r"^yosys stat output has no design summary and 2 "
                                         r"modules; flatten the design first$"):
        parse_stat(two)


def test_parse_pnr_report():
    text = json.dumps({
        "fmax": {"clk$SB_IO_IN_$glb_clk": {"achieved": 123.456, "constraint": 250}},
        "utilization": {"ICESTORM_LC": {"available": 5280, "used": 64}},
        "critical_paths": [],
    })
    result = parse_pnr_report(text)
    assert result.fmax_mhz == {"clk$SB_IO_IN_$glb_clk": 123.456}
    assert result.utilization == {"ICESTORM_LC": {"used": 64, "available": 5280}}
    with pytest.raises(ValueError, match=r"^nextpnr report has no 'utilization' section$"):
        parse_pnr_report("{}")


def test_percentages_skip_absent_resources():
    counts = dict(luts=528, carries=0, ffs=1, dsps=0, brams=3)
    totals = dict(luts=5280, carries=5280, ffs=7680, dsps=0, brams=32)
    assert percentages(counts, totals) == {"luts": 10.0, "carries": 0.0, "ffs": 0.01,
                                           "brams": 9.38}


def _report(target, top, luts, fmax=None, fits=None, percent=None):
    return SynthReport(target=target, top=top, luts=luts, carries=7, ffs=17, dsps=1, brams=0,
                       cells={"SB_LUT4": luts}, percent=percent, fmax_mhz=fmax, fits=fits)


def test_format_table_side_by_side():
    reports = [
        _report("ice40-up5k", "mul", 181, fmax=40.894, fits=True,
                percent=dict(luts=3.43, carries=0.13, ffs=0.32, dsps=12.5, brams=0.0)),
        _report("xc7", "mul", 135),
    ]
    table = format_table(reports)
    lines = table.splitlines()
    assert lines[0].split() == ["ice40-up5k", "xc7"]
    assert lines[2].split() == ["top", "mul", "mul"]
    assert lines[3].split() == ["LUT", "181", "(3.4%)", "135"]
    assert lines[5].split() == ["FF", "17", "(0.3%)", "17"]
    assert lines[6].split() == ["DSP", "1", "(12.5%)", "1"]
    assert lines[8].split() == ["Fmax", "MHz", "40.9", "-"]
    assert lines[9].split() == ["fits", "yes", "-"]
    # Columns line up: counts are right-aligned, so every row ends where the header rule ends.
    assert len({len(line) for line in lines}) == 1


def test_format_table_disambiguates_repeated_targets():
    table = format_table([_report("xc7", "a", 1), _report("xc7", "b", 2)])
    assert table.splitlines()[0].split() == ["a@xc7", "b@xc7"]


def test_format_table_errors():
    with pytest.raises(ValueError, match=r"^format_table needs at least one report$"):
        format_table([])
    with pytest.raises(TypeError, match=r"^format_table takes SynthReport objects, not 3$"):
        format_table([3])


def test_to_dict_is_json():
    report = _report("ice40-up5k", "mul", 5, fmax=12.5, fits=False)
    report.notes.append("a note")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["luts"] == 5 and data["fmax_mhz"] == 12.5 and data["fits"] is False
    assert data["cells"] == {"SB_LUT4": 5} and data["notes"] == ["a note"]
    assert report.counts() == dict(luts=5, carries=7, ffs=17, dsps=1, brams=0)
