"""End to end on a small fake results folder: covariates -> atlas -> stats -> report, then the
page opened in a real headless browser (Debian's chromium; skipped when it is absent)."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import argparse
import importlib
from cmr_atlas.stats.covariates import covariates_paths, index_by_bsa, write_covariates
from cmr_atlas.core.ids import keyed_hash

KEY = "report-test-key"
MODULES = {"atlas": "cmr_atlas.cli.atlas", "stats": "cmr_atlas.cli.stats", "report": "cmr_atlas.cli.report"}


def main(argv):
    """Run one of this stage's subcommands through its own parser (as cmr_atlas.cli does), without
    importing every other stage's module."""
    mod = importlib.import_module(MODULES[argv[0]])
    p = argparse.ArgumentParser(prog=f"cmr-atlas {argv[0]}")
    mod.add_arguments(p)
    return mod.run(p.parse_args(argv[1:]))


def make_results(root, cohort, to_table, n=40, manual=True, seed=0):
    """A results folder as the earlier stages would leave it, plus a covariates table
    (``cohort``, ``to_table``: the shape_cohort and shape_table fixtures)."""
    rng = np.random.default_rng(seed)
    shapes, lat = cohort(n=n, seed=seed)
    ids = [f"E{i:016x}" for i in range(n)]
    folders = [f"exam_{i:03d}" for i in range(n)]
    tabs = [to_table(shapes, "auto", ids)]
    if manual:
        tabs.append(to_table(shapes + rng.normal(0, 0.3, shapes.shape), "manual", ids))
    root.mkdir(parents=True, exist_ok=True)
    pd.concat(tabs, ignore_index=True).to_parquet(root / "shapes.parquet")
    status = ["ok"] * (n - 2) + ["failed"] * 2
    pd.DataFrame({"exam_id": ids, "status": status,
                  "qc_reason": [None] * (n - 2) + ["no short-axis stack", "missing ES frame"],
                  "vendor": rng.choice(["SIEMENS", "GE"], n)}).to_parquet(root / "exams.parquet")
    pd.DataFrame({"exam_id": ids, "key_type": "exam_folder",
                  "key_hash": [keyed_hash(f, KEY) for f in folders]}).to_parquet(root / "exam_keys.parquet")
    edv = 120 + 10 * lat[:, 0]
    rows = []
    for src, noise in (("auto", 3.0), ("manual", 0.0)) if manual else (("auto", 0.0),):
        e = edv + rng.normal(0, noise, n)
        rows.append(pd.DataFrame({"exam_id": ids, "source": src, "method": "fit", "edv_ml": e,
                                  "esv_ml": 0.4 * e, "sv_ml": 0.6 * e, "ef_pct": 60 + rng.normal(0, 2, n),
                                  "lv_mass_g": 100 + rng.normal(0, 5, n), "edvi": np.nan, "esvi": np.nan,
                                  "lvmi": np.nan, "rms_residual_mm": 1.0}))
    pd.concat(rows, ignore_index=True).to_parquet(root / "measures.parquet")
    # Covariates keyed by folder name; hypertension driven by the first latent shape factor.
    p = 1 / (1 + np.exp(-2.0 * lat[:, 0]))
    subj = pd.DataFrame({"exam_id": folders[:-1], "patient_id": [f"PAT{i}" for i in range(n - 1)],
                         "age": rng.normal(60, 10, n - 1), "sex": rng.choice(["F", "M"], n - 1),
                         "height_cm": 170.0, "weight_kg": 75.0,
                         "hypertension": (rng.random(n - 1) < p[:-1]).astype(int),
                         "diabetes": (np.arange(n - 1) < 3).astype(int)})
    subj.to_csv(root / "subjects.csv", index=False)
    return root


def run_pipeline(root, models_dir=None):
    write_covariates(covariates_paths(root), root / "subjects.csv", root / "exam_keys.parquet", "exam_folder",
                     "exam_id", KEY, root / "exams.parquet")
    # the cohort measures aggregate (workflow/scripts/fit_aggregate.py) indexes the measures by BSA
    m = pd.read_parquet(root / "measures.parquet")
    index_by_bsa(m, pd.read_parquet(root / "covariates.parquet")).to_parquet(root / "measures.parquet")
    assert main(["atlas", "--shapes", str(root / "shapes.parquet"), "--exams", str(root / "exams.parquet"),
                 "--out", str(root), "--n-components", "6", "--modes-to-render", "1"]) == 0
    assert main(["stats", "--scores", str(root / "atlas/scores.parquet"),
                 "--covariates", str(root / "covariates.parquet"),
                 "--covariates-extra", str(root / "covariates_extra.parquet"),
                 "--measures", str(root / "measures.parquet"), "--out", str(root),
                 "--risk-factors", "hypertension", "diabetes", "--n-pcs", "5", "--folds", "5",
                 "--bootstrap", "20", "--adjust-for", "age", "sex"]) == 0
    args = ["report", "--results", str(root)]
    if models_dir:
        args += ["--models-dir", str(models_dir)]
    assert main(args) == 0
    return root / "report" / "index.html"


@pytest.fixture(scope="module")
def full_report(tmp_path_factory, shape_cohort, shape_table):
    root = make_results(tmp_path_factory.mktemp("results"), shape_cohort, shape_table)
    models = root / "models"
    models.mkdir()
    (models / "segmentation.json").write_text('{"name": "sax-unet", "version": "1.2", "sha256": "abc123"}')
    return run_pipeline(root, models)


def test_pipeline_outputs_and_report_content(full_report):
    root = full_report.parent.parent
    for t in ("covariates", "atlas/scores", "atlas/explained_variance", "stats/risk_factor_auc",
              "stats/delong", "stats/odds_ratios", "stats/measures_agreement", "stats/oof_predictions"):
        assert (root / f"{t}.parquet").is_file(), t
    assert (root / "atlas" / "auto.npz").is_file() and (root / "atlas" / "manual.npz").is_file()
    assert len(list((root / "atlas" / "surfaces").glob("*.vtp"))) == 2 * (1 + 2) * 4
    scores = pd.read_parquet(root / "atlas/scores.parquet")
    assert scores.groupby("source").size().to_dict() == {"auto": 38, "manual": 38}  # failed exams left out
    auc = pd.read_parquet(root / "stats/risk_factor_auc.parquet").set_index(["risk_factor", "source"])
    assert auc.loc[("hypertension", "manual"), "auc"] > 0.6
    assert "too few" in auc.loc[("diabetes", "manual"), "note"]
    meas = pd.read_parquet(root / "stats/measures_agreement.parquet").set_index("measure")
    assert meas.loc["edvi", "n"] == 39  # indexed from the covariates' Mosteller BSA; one exam has none
    page = full_report.read_text()
    for text in ("Cohort and quality control", "no short-axis stack", "Shape atlas", "Risk factors",
                 "hypertension", "DeLong p", "Bland-Altman", "sax-unet", "scikit-learn"):
        assert text in page, text
    imgs = re.findall(r'<img src="([^"]+)"', page)
    assert len(imgs) >= 6
    for src in imgs:
        assert (full_report.parent / src).is_file(), src
    assert "exam_0" not in page and "PAT1" not in page  # no identifiers


def test_report_tolerates_missing_parts(tmp_path, shape_cohort, shape_table):
    root = make_results(tmp_path / "r", shape_cohort, shape_table, n=12, manual=False)
    index = run_pipeline(root)
    page = index.read_text()
    assert "No manual atlas" in page and "No DeLong comparison" in page
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", "--results", str(empty)]) == 0
    page = (empty / "report" / "index.html").read_text()
    assert "exams.parquet not found" in page and "No atlas found" in page


def test_fit_aggregate_indexes_the_cohort_measures_by_bsa(tmp_path):
    """BSA indexing happens once, when the per-shard measures become the cohort table; the report
    and the stats stage read it as is."""
    from cmr_atlas.cine.lvmodel.outputs import MEASURES
    from cmr_atlas.stats.fit_aggregate import aggregate_measures

    paths = []
    for i, exam in enumerate(("E1", "E2")):
        row = {c: None for c in MEASURES.column_names}
        row.update(exam_id=exam, source="auto", method="model", edv_ml=120.0 + i, esv_ml=50.0, lv_mass_g=100.0,
                   status="ok")
        paths.append(tmp_path / f"s{i}.parquet")
        pd.DataFrame([row]).astype({"edv_ml": float, "esv_ml": float, "lv_mass_g": float}).to_parquet(paths[-1])
    pd.DataFrame({"exam_id": ["E1"], "bsa_m2": [2.0]}).to_parquet(tmp_path / "covariates.parquet")
    out = aggregate_measures(paths, tmp_path / "covariates.parquet", tmp_path / "measures.parquet")
    written = pd.read_parquet(tmp_path / "measures.parquet").set_index("exam_id")
    np.testing.assert_allclose(out.set_index("exam_id")["edvi"].astype(float), written["edvi"])
    assert written.loc["E1", ["edvi", "esvi", "lvmi"]].tolist() == [60.0, 25.0, 50.0]
    assert written.loc["E2", ["edvi", "esvi", "lvmi"]].isna().all()  # no BSA: null, not a guess


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var d = document.createElement('div'); d.id = 'imgcheck';
  d.textContent = 'loaded ' + ok + ' of ' + imgs.length; document.body.appendChild(d);
});
</script></body>"""


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(full_report, tmp_path):
    # A copy of the page with a probe that counts images the browser actually decoded.
    probe = full_report.parent / "probe.html"
    probe.write_text(full_report.read_text().replace("</body>", CHECK_SCRIPT))
    base = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000"]
    dom = subprocess.run([*base, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r"loaded (\d+) of (\d+)", dom.stdout)
    assert m, f"probe did not run; chromium said: {dom.stderr[-2000:]}"
    assert int(m.group(2)) >= 6 and m.group(1) == m.group(2), m.group(0)
    assert "Risk factors and shape" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1200,2400", full_report.as_uri()],
                   capture_output=True, text=True, timeout=120)
    assert shot.is_file(), "no screenshot written"
    import matplotlib.pyplot as plt

    img = np.asarray(plt.imread(shot))[..., :3]
    assert img.std() > 0.05  # not a blank page
    assert (img.mean(axis=2) < 0.5).mean() > 0.005  # some dark pixels: text and figures drawn


def test_atlas_cli_projects_onto_a_saved_atlas(full_report, tmp_path):
    root = full_report.parent.parent
    out = tmp_path / "proj"
    assert main(["atlas", "--shapes", str(root / "shapes.parquet"), "--out", str(out),
                 "--project", str(root / "atlas" / "auto.npz")]) == 0
    proj = pd.read_parquet(out / "atlas" / "projected_scores.parquet")
    train = pd.read_parquet(root / "atlas" / "scores.parquet")
    both = proj[proj["source"] == "auto"].merge(train[train["source"] == "auto"], on="exam_id")
    assert len(both) == 38 and proj["exam_id"].nunique() == 40  # failed exams projected too
    np.testing.assert_allclose(both["pc1_x"], both["pc1_y"], atol=1e-6)
    np.testing.assert_allclose(both["rms_to_mean_mm_x"], both["rms_to_mean_mm_y"], atol=1e-6)
