"""A plain (non-editable) install carries the default config and the sample corpus."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from conftest import ROOT


def test_wheel_installs_and_trains_from_any_directory(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(tmp_path / "dist"), str(ROOT)], check=True)
    wheel = next((tmp_path / "dist").glob("slotfill-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "slotfill/_bundled/configs/bilstm.yaml" in names
    assert "slotfill/_bundled/data/train/seq.in" in names
    assert "slotfill/analysis/report_assets/report.js" in names
    assert "slotfill/_bundled/data/zh/train/seq.in" in names  # data.path=bundled-zh
    assert "slotfill/_bundled/configs/bilstm-zh.yaml" in names
    assert "slotfill/serving/demo.html" in names  # the page `slotfill serve` shows at /
    assert "slotfill/py.typed" in names  # type checkers read the public API's hints

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                    "--target", str(site), str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-m", "slotfill", "train", "train.epochs=1", "model.hidden_size=8",
         "model.embedding_dim=8", "train.device=cpu"],
        cwd=elsewhere, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    run_dir = elsewhere / result.stdout.strip().splitlines()[-1]
    assert (run_dir / "best.pt").is_file()
    report = (run_dir / "report.html").read_text()  # its script and style come inlined
    assert 'querySelectorAll("table.sortable")' in report and "--k-missed" in report
    assert str(site) in result.stdout  # the corpus came from the installed package
