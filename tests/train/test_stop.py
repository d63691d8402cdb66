"""Stop keeps the last checkpoint: no model artefact, and a re-run resumes from it."""

from __future__ import annotations

import pytest
from transformers import TrainerCallback

from loop.train import train
from loop.train.stop import StopTraining, TrainingStopped


def test_stop_saves_a_checkpoint_and_a_rerun_resumes(ws, tiny_student, kit):
    kit.write_dataset(ws, kit.fact_rows())
    cfg = kit.fast_config(tiny_student, max_steps=5, save_steps=50, eval_steps=50)
    stop = StopTraining()

    class AtStep3(TrainerCallback):  # the dashboard's Stop button, pressed during step 3
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2:
                stop.request()

    with pytest.raises(TrainingStopped, match="stopped at step 3") as e:
        train(ws, cfg, callbacks=[AtStep3(), stop])
    assert e.value.checkpoint.endswith("checkpoint-3")
    assert (ws.root / "checkpoints").exists() and not list(ws.dir("models").iterdir())
    status = ws.ledger.conn.execute("SELECT status FROM runs WHERE stage = 'train'").fetchone()[0]
    assert status == "stopped"  # not "failed": the run is resumable
    again = train(ws, cfg)
    assert again.resumed_from == "checkpoint-3" and again.steps == 5
