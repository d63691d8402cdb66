"""Pilot tests of the screens that drive stages: generate (and cancel), review, train (and
stop), index, playground, the per-document scoreboard and comparing runs."""

from __future__ import annotations

import threading

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, Static, TextArea

from tui.app import SynthloopApp
from tui.base import JobDone, StageEvent
from tui.generate import GenerateScreen
from tui.index import IndexScreen
from tui.playground import PlaygroundScreen
from tui.runs import CompareScreen, RunsScreen
from tui.samples import EditScreen, SamplesScreen
from tui.train import TrainScreen

SIZE = (100, 30)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def until(pilot, cond, timeout: float = 60.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out waiting")


async def press_and_settle(app, pilot, key: str) -> None:
    """Press a key, then let the screen's loader workers finish and the UI catch up."""
    await pilot.press(key)
    await app.workers.wait_for_complete()
    await pilot.pause()


def _text(app, selector) -> str:
    return str(app.screen.query_one(selector, Static).render())


@pytest.fixture
def example_ws_path(tmp_path, example_dir):
    from loop.ingest import ingest
    from loop.workspace import Workspace

    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [example_dir])
    return tmp_path / "ws"


async def test_generate_then_cancel_keeps_the_rows_done(example_ws_path, monkeypatch):
    from generators.teachers.rules import RulesTeacher
    from loop.samples import load_samples
    from loop.workspace import Workspace

    gate, calls, items = threading.Event(), [], RulesTeacher._items

    def slow(self, job):  # the third job waits until the test has pressed Cancel
        calls.append(job.chunk.chunk_id)
        if len(calls) == 3:
            assert gate.wait(30)
        return items(self, job)

    monkeypatch.setattr(RulesTeacher, "_items", slow)
    messages = []
    app = SynthloopApp(example_ws_path)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await press_and_settle(app, pilot, "9")  # no dataset yet: the browser must reload when shown again
        assert "No dataset yet" in _text(app, "#samples-info")
        await pilot.press("6")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, GenerateScreen)
        screen.query_one("#gen-tasks", Input).value = "qa"
        screen.query_one("#gen-limit", Input).value = "10"
        await pilot.click("#gen-start")
        await until(pilot, lambda: len(calls) == 3)
        assert screen.running and "jobs 2/10" in _text(app, "#gen-stats")
        await pilot.click("#gen-cancel")
        gate.set()
        await until(pilot, lambda: not screen.running)
        await pilot.pause()
        assert "jobs 3/10" in _text(app, "#gen-stats")
        assert not app.screen.query_one("#gen-start").disabled  # ready to continue
        await press_and_settle(app, pilot, "b")  # the kept rows, in the sample browser
        assert isinstance(app.screen, SamplesScreen)
        kept = app.screen.query_one("#samples", DataTable).row_count
    done = [m for m in messages if isinstance(m, JobDone)]
    assert len(done) == 1 and done[0].error is None
    result = done[0].result
    assert result.cancelled and result.samples == kept > 0
    # the worker's message flow: Started, a Progress per finished job, the cancel, Finished
    flow = [type(m.event).__name__ for m in messages if isinstance(m, StageEvent)]
    assert flow == ["Started", "Progress", "Progress", "Progress", "Warned", "Finished"]
    with Workspace(example_ws_path) as ws:
        rows = load_samples(ws)
        assert len(rows) == result.samples
        assert {r["chunk_ids"][0] for r in rows} <= set(calls[:3])


async def test_failed_jobs_are_said_and_starting_again_retries_them(example_ws_path, monkeypatch):
    from generators.teachers.base import JobResult
    from generators.teachers.rules import RulesTeacher

    run, broken = RulesTeacher.run, [True]

    def flaky(self, jobs, on_result):  # the second job fails, while `broken` holds
        def deliver(job, result):
            on_result(job, JobResult(error="HTTP 500 scripted") if broken[0] and job is jobs[1] else result)
        run(self, jobs, deliver)

    monkeypatch.setattr(RulesTeacher, "run", flaky)
    messages = []
    app = SynthloopApp(example_ws_path)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await pilot.press("6")
        await pilot.pause()
        screen = app.screen
        screen.query_one("#gen-tasks", Input).value = "qa"
        screen.query_one("#gen-limit", Input).value = "4"
        for attempt in range(2):
            await pilot.click("#gen-start")
            await until(pilot, lambda n=attempt + 1: sum(isinstance(m, JobDone) for m in messages) == n)
            await pilot.pause()
            broken[0] = False
        warned = [n.message for n in app._notifications if n.severity == "warning"]
    first, second = (m.result for m in messages if isinstance(m, JobDone))
    assert len(first.failed_chunks) == 1 and first.failed_chunks[0]["reason"] == "HTTP 500 scripted"
    assert warned == ["1 jobs failed: their rows are missing. Start again to retry them; the jobs "
                      "that worked come back from the cache"]
    assert second.failed_chunks == [] and second.samples > first.samples
    assert second.dataset_id != first.dataset_id


async def test_generate_with_a_bad_teacher_is_a_notification(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await pilot.pause()
        app.screen.query_one("#gen-teacher", Input).value = "nope:model"
        await pilot.click("#gen-start")
        await until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        await app.workers.wait_for_complete()
        note = next(n for n in app._notifications if n.severity == "error")
        assert "nope" in note.message and app.is_running


async def test_samples_accept_edit_reject_and_apply(dash_ws, kit_tui):
    from loop.samples import current_dataset_id, load_samples
    from loop.workspace import Workspace

    rows = kit_tui.sample_rows(4)
    old = kit_tui.put_dataset(dash_ws, rows)
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await press_and_settle(app, pilot, "9")
        assert isinstance(app.screen, SamplesScreen)
        table = app.screen.query_one("#samples", DataTable)
        assert table.row_count == 4 and "When does ferry 0 leave?" in _text(app, "#sample-detail")
        await pilot.press("a", "x", "e")  # a and x move on to the next sample
        await pilot.pause()
        assert isinstance(app.screen, EditScreen)
        app.screen.query_one("#edit-a", TextArea).text = "At 2:15 sharp."
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SamplesScreen)
        assert [str(table.get_row_at(i)[2]) for i in range(4)] == ["✓ accepted", "✗ rejected", "✎ edited", "-"]
        await pilot.press("ctrl+s")  # apply
        await until(pilot, lambda: any("verdicts applied" in (n.title or "") for n in app._notifications))
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one("#samples", DataTable).row_count == 3
    with Workspace(dash_ws) as ws:
        assert current_dataset_id(ws) != old
        answers = [r["messages"][-1]["content"] for r in load_samples(ws)]
        assert answers == ["At 0:15.", "At 2:15 sharp.", "At 3:15."]
        reasons = [r[0] for r in ws.ledger.conn.execute(
            "SELECT reason FROM rejects WHERE dataset_id = ?", (current_dataset_id(ws),))]
        assert reasons == ["human"]


async def test_train_plots_the_loss_and_stop_keeps_a_checkpoint(dash_ws, kit_tui, tui_student):
    kit_tui.put_dataset(dash_ws, kit_tui.sample_rows(12))
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await press_and_settle(app, pilot, "7")
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        assert screen.query_one("#train-student", Input).value  # a default is filled in
        for name, value in (("student", f"hf:{tui_student}"), ("max-steps", "200"), ("batch-size", "2"),
                            ("eval-steps", "2")):
            screen.query_one(f"#train-{name}", Input).value = value
        await pilot.click("#train-start")
        await until(pilot, lambda: screen.curves.train and screen.curves.val)  # both curves plotted
        await pilot.click("#train-stop")
        await until(pilot, lambda: not screen.running)
        await pilot.pause()
        stats = _text(app, "#train-stats")
        assert "stopped at step" in stats and "checkpoint-" in stats
    assert list((dash_ws / "checkpoints").glob("*/checkpoint-*/trainer_state.json"))
    assert not (dash_ws / "models").exists() or not list((dash_ws / "models").iterdir())


async def test_index_build_and_recall(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await press_and_settle(app, pilot, "4")
        assert isinstance(app.screen, IndexScreen)
        assert "st:all-MiniLM-L6-v2" in _text(app, "#index-info")
        await pilot.press("b")
        await until(pilot, lambda: any((n.title or "") == "index" for n in app._notifications))
        assert any("unchanged" in n.message for n in app._notifications)
        await press_and_settle(app, pilot, "k")
        recall = app.screen.query_one("#recall", DataTable)
        assert recall.row_count == 3
        cols = [str(c.label) for c in recall.columns.values()]
        assert cols[:2] == ["method", "recall@1"] and "mrr@10" in cols
        assert str(recall.get_row_at(0)[0]) == "bm25"


async def test_playground_answers_with_every_setup(dash_ws, tui_student):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("8")
        await pilot.pause()
        assert isinstance(app.screen, PlaygroundScreen)
        app.screen.query_one("#play-student", Input).value = f"hf:{tui_student}"
        app.screen.query_one("#ask", Input).focus()
        await pilot.press(*"When does the ferry leave?", "enter")
        await until(pilot, lambda: len(app.screen.query(".answer")) == 2)
        texts = [str(s.render()) for s in app.screen.query(".answer")]
        assert texts[0].startswith("base") and texts[1].startswith("rag")
        assert "sources" in texts[1] and "ferry.md" in texts[1] and "sources" not in texts[0]


async def test_scoreboard_per_document_view(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await press_and_settle(app, pilot, "2")
        await pilot.press("p")
        await pilot.pause()
        docs = app.screen.query_one("#by-doc", DataTable)
        assert docs.display and not app.screen.query_one("#split").display
        assert [str(c) for c in docs.get_row_at(0)] == ["ferry.md", "3", "0.33 / 0.33", "1.00 / 1.00"]
        await pilot.press("p")
        await pilot.pause()
        assert app.screen.query_one("#split").display


async def test_runs_compare_two_side_by_side(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await press_and_settle(app, pilot, "3")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("c")  # nothing marked yet: a warning, no screen
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("m", "down", "m", "c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        table = app.screen.query_one("#compare", DataTable)
        rows = {str(table.get_row_at(i)[1]): [str(c) for c in table.get_row_at(i)]
                for i in range(table.row_count)}
        assert rows["run.stage"][0] == "≠" and rows["run.stage"][2:] == ["eval", "train"]
        assert rows["scores.rag.f1"][2].startswith("0.80")  # the eval run's lineage: its scores
        await pilot.press("f")  # only the differences
        await pilot.pause()
        assert all(str(table.get_row_at(i)[0]) == "≠" for i in range(table.row_count))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_command_palette_opens_a_screen_by_name(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Playground")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PlaygroundScreen)
