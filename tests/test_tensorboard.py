"""train.tensorboard: event files read back with TensorBoard's own reader; a clear error
naming the extra when tensorboard is not installed."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import CONFIGS, tiny_overrides
from typer.testing import CliRunner

from slotfill.cli import app

runner = CliRunner()


def test_event_files_hold_epochs_steps_and_hparams(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(CONFIGS / "bilstm.yaml"),
                                 *tiny_overrides(epochs=2), "train.batch_size=8",
                                 "train.tensorboard=true", "train.log_every=3",
                                 "--output", str(run)])
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "dev/precision", "dev/recall", "dev/f1", "train/lr",
            "train/grad_norm", "train/loss_step"} <= set(scalars)
    history = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    header, rows = history[0], history[1:]
    f1 = [e.value for e in events.Scalars("dev/f1")]
    assert [e.step for e in events.Scalars("dev/f1")] == [1, 2]
    assert f1 == pytest.approx([float(r[header.index("dev_f1")]) for r in rows])
    steps = [e.step for e in events.Scalars("train/loss_step")]
    assert len(steps) > 6 and steps == list(range(3, steps[-1] + 1, 3))  # every 3rd batch
    assert all(e.value > 0 for e in events.Scalars("train/loss_step"))
    # the hyperparameters (the whole config) with the final scores
    from tensorboard.plugins.hparams import plugin_data_pb2

    metrics = json.loads((run / "metrics.json").read_text())
    content = events.PluginTagToContent("hparams")
    starts = [plugin_data_pb2.HParamsPluginData.FromString(v).session_start_info
              for v in content.values()]
    hparams = next(s.hparams for s in starts if s.hparams)
    assert hparams["model.type"].string_value == "lstm"
    assert hparams["train.log_every"].number_value == 3
    assert events.Scalars("hparam/test_f1")[0].value == pytest.approx(metrics["test"]["f1"])
    assert events.Scalars("hparam/best_epoch")[0].value == metrics["best_epoch"]

def test_without_the_package_the_switch_names_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "bilstm", *tiny_overrides(),
                                 "train.tensorboard=true", "--output", str(run)])
    assert result.exit_code == 2
    assert 'pip install "slotfill[tensorboard]"' in result.stderr
    assert not run.exists()  # refused before a run directory was made
