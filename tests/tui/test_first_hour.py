"""Issue 27's dashboard traps, one pilot test each: the question box lets go on Escape, the
playground answers before any training, a/x advance and the count is current, recall@k on a
gold set the user picks, a failed job says so and its bar stops, a CLI run in the same
workspace shows as running, the footer fits 80 columns, hits in score order, and the help
names the rule the scoreboard's ▲ follows. No real model loads: the student is a fake."""

from __future__ import annotations

import json
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from textual.widgets import DataTable, Input, ProgressBar, Static

from tui.app import SynthloopApp
from tui.base import JobDone
from tui.generate import GenerateScreen
from tui.index import IndexScreen
from tui.playground import PlaygroundScreen
from tui.runs import RunsScreen
from tui.samples import SamplesScreen
from tui.screens import SCREENS
from tui.train import TrainScreen

SIZE = (100, 30)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def until(pilot, cond, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out waiting")


async def settle(app, pilot) -> None:
    from textual.worker import WorkerCancelled

    for _ in range(20):  # a poll (RunWatch) replaced by the next one is cancelled: wait again
        try:
            await app.workers.wait_for_complete()
            break
        except WorkerCancelled:
            await pilot.pause(0.05)
    await pilot.pause()


def _text(app, selector) -> str:
    return str(app.screen.query_one(selector, Static).render())


@pytest.fixture
def fake_student(monkeypatch):
    """The eval stage's student pool and decoder replaced: every setup answers "7:15" at
    once, and ``loaded`` records the student URI each pool was asked for."""
    loaded: list[str] = []

    class Pool:
        def __init__(self, ws, uri, models, device, **kw):
            loaded.append(uri)
            self.notes: list[str] = []
            self.student = SimpleNamespace(uri=uri)

        @contextmanager
        def use(self, setup):
            yield None, None

    def generate_texts(model, tok, chats, max_new_tokens=0, **kw):
        return [SimpleNamespace(text="7:15") for _ in chats]

    monkeypatch.setattr("loop.eval.models.SetupModels", Pool)
    monkeypatch.setattr("generators.teachers.hf.generate_texts", generate_texts)
    return loaded


async def _ask(app, pilot, question: str = "When does the ferry leave?", student: str = "") -> None:
    await pilot.press("8")
    await pilot.pause()
    assert isinstance(app.screen, PlaygroundScreen)
    app.screen.query_one("#play-student", Input).value = student
    await pilot.press("slash", *question, "enter")
    await until(pilot, lambda: len(app.screen.query(".answer")) == 2)


# -- 1. Escape leaves the question box ---------------------------------------------------------


async def test_escape_after_an_answer_gives_the_keys_back_to_the_app(dash_ws, fake_student):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await _ask(app, pilot, student="hf:fake")
        box = app.screen.query_one("#ask", Input)
        assert app.focused is box
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.focused, Input)
        await pilot.press("3")  # a screen key, not a character in the box
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert box.value == "When does the ferry leave?"


# -- 2. base and rag answer with the configured student before any training --------------------


async def test_playground_answers_base_and_rag_with_the_configured_student(dash_ws, fake_student):
    from loop.train import TrainConfig

    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await _ask(app, pilot)
        texts = [str(s.render()) for s in app.screen.query(".answer")]
        assert texts[0].startswith("base") and texts[1].startswith("rag")
        assert "7:15" in texts[0]
        assert not [n for n in app._notifications if n.severity == "error"]
        student = TrainConfig().student
        assert fake_student == [student]
        assert student in app.screen.query_one("#play-student", Input).placeholder


# -- 3. a/x advance; the header count is current ------------------------------------------------


async def test_accept_and_reject_move_on_and_count_at_once(dash_ws, kit_tui):
    kit_tui.put_dataset(dash_ws, kit_tui.sample_rows(4))
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("9")
        await settle(app, pilot)
        assert isinstance(app.screen, SamplesScreen)
        table = app.screen.query_one("#samples", DataTable)
        await pilot.press("a")
        await pilot.pause()
        assert table.cursor_row == 1
        assert "1 accepted" in _text(app, "#samples-info")
        assert "ferry 1" in _text(app, "#sample-detail")  # the next sample is shown
        await pilot.press("x")
        await pilot.pause()
        assert table.cursor_row == 2
        info = _text(app, "#samples-info")
        assert "1 accepted" in info and "1 rejected" in info
        assert [str(table.get_row_at(i)[2]) for i in range(3)] == ["✓ accepted", "✗ rejected", "-"]


# -- 4. recall@k on a human gold set the user picks ---------------------------------------------


async def test_recall_runs_on_a_gold_set_the_user_picks(dash_ws, tmp_path):
    from loop.workspace import Workspace

    with Workspace(dash_ws) as ws:  # no generated eval set: only the human one
        ws.ledger.conn.execute("DELETE FROM meta WHERE key = 'eval_set'")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in [
        {"question": "When does the ferry leave?", "answers": ["7:15"], "doc": "ferry.md"},
        {"question": "How much is the fee?", "answers": ["12 crowns"], "doc": "fees.md"}]))
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        assert isinstance(app.screen, IndexScreen)
        assert not app.screen.query_one("#index-recall").disabled
        app.screen.query_one("#recall-set", Input).value = str(gold)
        await pilot.click("#index-recall")
        recall = app.screen.query_one("#recall", DataTable)
        await until(pilot, lambda: recall.row_count == 3)
        assert [str(recall.get_row_at(i)[0]) for i in range(3)] == ["bm25", "dense", "hybrid"]
        assert "2 questions" in _text(app, "#recall-title") and "gold.jsonl" in _text(app, "#recall-title")
        app.screen.query_one("#recall-set", Input).value = ""
        await pilot.click("#index-recall")  # nothing to score on: said, not a traceback
        await until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        note = next(n for n in app._notifications if n.severity == "error")
        assert "gold set" in note.message and app.is_running


# -- 5. a failed job says so; idle bars are still -----------------------------------------------


def _still(bar: ProgressBar) -> bool:
    """An indeterminate bar (no total) animates 15 times a second."""
    return bar.percentage is not None


async def test_a_failed_generation_says_failed_and_its_bar_stops(dash_ws, monkeypatch):
    def broken(*a, **kw):
        raise RuntimeError("the teacher fell over [b]")

    monkeypatch.setattr("tui.generate.run_generation", broken)
    messages = []
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await pilot.press("6")
        await pilot.pause()
        assert isinstance(app.screen, GenerateScreen)
        bar = app.screen.query_one("#gen-bar", ProgressBar)
        assert _still(bar)  # not started: nothing moves
        await pilot.click("#gen-start")
        await until(pilot, lambda: any(isinstance(m, JobDone) for m in messages))
        await pilot.pause()
        stats = _text(app, "#gen-stats")
        assert stats.startswith("failed") and "the teacher fell over [b]" in stats
        assert _still(bar)
        assert not app.screen.query_one("#gen-start").disabled


async def test_an_idle_index_screen_animates_nothing(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        assert _still(app.screen.query_one("#index-bar", ProgressBar))


# -- 6. a CLI training in the same workspace shows as running -----------------------------------


async def test_a_cli_training_in_the_workspace_shows_as_running(dash_ws, monkeypatch):
    from loop.workspace import Workspace
    from tui.base import RunWatch

    monkeypatch.setattr(RunWatch, "POLL_S", 0.1)
    ws = Workspace(dash_ws)
    with ws.writing("synthloop train"):  # what a CLI training holds while it runs
        rid = ws.ledger.start_run("train", ["synthloop", "train"], {"student": "smollm2"})
        app = SynthloopApp(dash_ws)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert "Running" in _text(app, "#ws-summary")
            assert f"train (run {rid}" in _text(app, "#ws-summary")
            await pilot.press("7")
            await settle(app, pilot)
            assert isinstance(app.screen, TrainScreen)
            await until(pilot, lambda: "running" in _text(app, "#train-stats"))
            assert f"run {rid}" in _text(app, "#train-stats")
            assert app.screen.query_one("#train-start").disabled
            ws.ledger.finish_run(rid, status="ok", summary={})
            ws._release()  # the CLI run ends
            await until(pilot, lambda: not app.screen.query_one("#train-start").disabled)
            assert "running" not in _text(app, "#train-stats")
    ws.close()


async def test_a_run_left_running_by_a_dead_process_is_not_running(dash_ws):
    from loop.workspace import Workspace

    with Workspace(dash_ws) as ws:  # killed mid-run: its row says running, nobody holds the lock
        ws.ledger.start_run("train", ["synthloop", "train"], {})
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "Running" not in _text(app, "#ws-summary")


# -- 7. the footer fits 80 columns ---------------------------------------------------------------


async def test_the_footer_fits_80_columns_on_every_screen(dash_ws):
    from textual.widgets._footer import FooterKey

    app = SynthloopApp(dash_ws)
    async with app.run_test(size=(80, 24)) as pilot:
        for spec in SCREENS:
            await pilot.press(spec.key)
            await settle(app, pilot)
            await pilot.pause(0.1)
            assert isinstance(app.screen, spec.screen)
            keys = {k.key: k.region for k in app.screen.query(FooterKey)}
            for s in SCREENS:  # every screen key, drawn inside the 80 columns
                assert s.key in keys, (spec.mode, s.key)
                assert keys[s.key].width and keys[s.key].right <= 80, (spec.mode, s.key, keys[s.key])
            for key in ("question_mark", "q"):
                assert key in keys and keys[key].right <= 80, (spec.mode, key)
            shown = [k for k in app.screen.query(FooterKey) if "-command-palette" not in k.classes]
            palette = [k for k in app.screen.query(FooterKey) if "-command-palette" in k.classes]
            left = min((k.region.x for k in palette), default=80)
            over = [k.key for k in shown if k.region.right > left]
            assert not over, (spec.mode, over)  # nothing cut, nothing under the palette key


# -- 8. hits in the order of the score shown ----------------------------------------------------


async def test_hits_are_listed_by_the_score_shown(dash_ws, monkeypatch):
    from retrieval.index import Hit

    def hit(n: int, score: float) -> Hit:
        return Hit(f"c{n}", score, f"passage {n}", f"doc{n}.md", "", f"d{n}", 0, 1)

    ranked = [hit(1, 0.2), hit(2, 0.5), hit(3, 0.1)]  # a rerank reordered the fused scores
    monkeypatch.setattr("tui.data.open_retriever",
                        lambda ws: SimpleNamespace(search=lambda q, k, m: list(ranked)))
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        await pilot.press("slash", *"ferry", "enter")
        await settle(app, pilot)
        text = _text(app, "#hits-hybrid")
        order = [text.index(f"doc{n}.md") for n in (2, 1, 3)]
        assert order == sorted(order), text
        assert "0.500" in text.split("doc1.md")[0]


# -- 9. the help names the rule the ▲ follows ---------------------------------------------------


async def test_help_describes_the_holm_corrected_rule(dash_ws):
    from loop.eval.stage import CORRECTION
    from tui.help import help_text

    assert "Holm" in CORRECTION  # the rule the eval stage applies (and `significant` holds)
    text = help_text()
    assert "Holm" in text and "paired bootstrap" in text
    assert "interval excludes 0" not in text
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        verdict = _text(app, "#verdict")
        assert "Holm" in verdict and "95% interval excludes 0" not in verdict
