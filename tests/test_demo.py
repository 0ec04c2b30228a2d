"""``shadowlab demo`` end to end, smaller: it runs, writes its files atomically, and is right."""

import csv

import matplotlib.image

from shadowlab.demo import run_demo


def test_demo_writes_plot_and_predictions(tmp_path):
    out = tmp_path / "demo"
    summary = run_demo(out, n_snapshots=3000, seed=5, quiet=True)
    # An 11 x 4.6 inch figure saved at 130 dpi (shadowlab.plots.demo_figure).
    assert matplotlib.image.imread(out / "demo.png").shape[:2] == (round(4.6 * 130), 11 * 130)
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == summary["n_properties"] >= 1000
    energy = rows[-1]
    assert energy["observable"] == "energy"
    assert abs(float(energy["estimate"]) - float(energy["exact"])) <= 5 * float(energy["stderr"])
    # The folder is replaced as a whole on a second run; no temporary is left behind.
    run_demo(out, n_snapshots=1000, seed=6, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
