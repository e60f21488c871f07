"""Training loop of the TI-selection networks (cmr_atlas.tiscout.train), on three small scouts."""

from __future__ import annotations

import numpy as np

from cmr_atlas.tiscout import train as T


def test_training_decays_the_rate_and_keeps_the_best_epoch(small_scouts, monkeypatch):
    rates = []
    real_step = T.torch.optim.Adam.step

    def spy(self, *a, **k):
        rates.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(T.torch.optim.Adam, "step", spy)
    cfg = T.TrainCfg(epochs=3, batch=8, steps=2, threads=1, max_seconds=600.0)
    model, info = T.train("default", small_scouts, cfg)
    losses = [h["val_loss"] for h in info["history"]]
    assert len(losses) == 3 and info["best_val_loss"] == min(losses)
    assert rates[0] == cfg.lr and rates[-1] < rates[0]  # cosine decay across the epochs
    p = T.predict(model, small_scouts.frames[model.hparams["input_size"]])
    assert p.shape[0] == len(small_scouts.obs1) and np.all((p >= 0) & (p <= 1))
