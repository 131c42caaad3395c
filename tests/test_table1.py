"""Table 1's layout: the paper's numbers, mean ± sample std over seeds, "–" where no TTN."""
import numpy as np

from nsde_lib import curves_figure
from nsde_lib import PAPER_TABLE1, mean_spread, table1_figure, table1_rows, table1_text


def test_mean_and_sample_spread_in_percent():
    accs = [0.9012, 0.9101, 0.8950]
    pct = 100 * np.array(accs)
    assert mean_spread(accs) == f"{pct.mean():.2f} ± {pct.std(ddof=1):.2f}"
    assert mean_spread([0.9]) == "90.00" and mean_spread(None) == "–" and mean_spread([]) == "–"


def test_rows_follow_the_papers_columns_and_add_jump_dropout():
    results = {"none": {"no_ttn": [0.95, 0.97], "ttn": None},
               "multiplicative": {"no_ttn": [0.93, 0.95], "ttn": [0.94, 0.96]},
               "jump-dropout": {"no_ttn": [0.9], "ttn": [0.91]}}
    header, rows = table1_rows(results, "ours", paper=("CIFAR-10", "STL-10"))
    assert header[1:6] == ["w/o TTN: ODE", "w/o TTN: Additive", "w/o TTN: Multiplicative",
                           "w/o TTN: Dropout", "w/o TTN: Jump-dropout"]
    ours = dict(zip(header, rows[0]))
    assert ours["w/o TTN: ODE"] == "96.00 ± 1.41" and ours["w/ TTN: ODE"] == "–"
    assert ours["w/o TTN: Additive"] == "–" and ours["w/ TTN: Jump-dropout"] == "91.00"
    cifar = dict(zip(header, rows[1]))
    assert cifar["w/o TTN: Multiplicative"] == "89.06" and cifar["w/ TTN: Dropout"] == "88.44"
    assert cifar["w/ TTN: ODE"] == "–" and cifar["w/o TTN: Jump-dropout"] == "n/a"
    assert dict(zip(header, rows[2]))["w/ TTN: Multiplicative"] == "62.58"  # STL-10
    text = table1_text(results, "ours")
    assert text.splitlines()[0].split() == ["data", "ours", "CIFAR-10", "(paper", "000)"]
    assert len(table1_figure(results, "ours").data[0].cells.values) == len(header)


def test_paper_numbers_are_table_1():
    """Spot checks against the paper's Table 1 (noise helps on every row, more with TTN)."""
    for row in PAPER_TABLE1.values():
        ode = row["w/o TTN"][0]
        assert all(v > ode for v in row["w/o TTN"][1:])
        assert row["w/ TTN"][0] is None
    assert PAPER_TABLE1["CIFAR-10"]["w/o TTN"] == (87.95, 88.69, 89.06, 88.23)


def test_curves_figure_draws_mean_and_band():
    fig = curves_figure({"a": [[0.1, 0.5], [0.3, 0.7]], "b": [0.2, 0.4]}, percent=True)
    lines = [t for t in fig.data if t.mode == "lines"]
    np.testing.assert_allclose(lines[0].y, [20, 60])
    assert len(fig.data) == 3  # a's band, a's mean, b (one run: no band)
