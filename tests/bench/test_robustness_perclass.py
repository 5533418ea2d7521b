"""``colearn bench robustness --variants``: the per-class voters' column beside the vote."""

import pytest

from colearning.bench.robustness import DEFAULT_VARIANTS, Cell, cells_for, run_grid
from colearning.bench.robustness_report import summarize, table
from colearning.core.exceptions import ConfigError


def test_variants_are_checked_and_named_in_the_key():
    with pytest.raises(ConfigError, match="variant must be among"):
        cells_for(["digits-mlp"], [5], ["iid"], [0.4], ["noise"], [0], 2, variants=["vote+x"])
    cells = cells_for(
        ["digits-mlp"], [5], ["iid"], [0.4], ["noise"], [0], 2, variants=["vote+perclass"]
    )
    assert {c.variants for c in cells} == {("vote", "vote+perclass")}
    assert cells[1].key.endswith("-r2-v-vote-perclass")
    # the default variants keep the keys cells had before --variants
    assert Cell("t", 5, "iid", 1, 0.4, "noise", 20).variants == DEFAULT_VARIANTS
    assert Cell("t", 5, "iid", 1, 0.4, "noise", 20).key == "t-n5-iid-s1-noise-m2-r20"


def test_the_per_class_column_is_played_and_reported(tmp_path):
    cells = cells_for(
        ["digits-mlp"],
        [5],
        ["iid"],
        [0.0, 0.4],
        ["label-flip"],
        [0],
        4,
        defences=[],
        variants=["vote", "vote+margin", "vote+perclass"],
    )
    results = run_grid(cells, tmp_path, log=lambda _: None)
    flip = next(r for r in results if r["cell"]["attack"] == "label-flip")
    assert {"protocol", "vote+margin", "vote+perclass"} <= set(flip)
    assert flip["vote+perclass"]["malicious_proposals"] == flip["protocol"]["malicious_proposals"]
    md = table(summarize(results))
    assert "vote+perclass: accuracy, vs clean" in md
    assert md.splitlines()[0].count("|") == md.splitlines()[1].count("|")
    # a resumed grid reads the files back under the same keys
    assert run_grid(cells, tmp_path, log=lambda _: None) == results
