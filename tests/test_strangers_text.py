"""Text from servers, files, the config and the user is data (issue 17, item 1): it reaches
the screen as Content and is never read as markup. `rich.markup.escape` left Textual 8 tags
such as `[B="x]` to the parser: a pre-auth DISCONNECT with that reason ended the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from coreutil import isolate_home
from dashboard_util import make_app, ready, screen_text, shown, type_text, until
from harness.hostile import DisconnectingEndpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.content import Content
from textual.fuzzy import Matcher
from textual.widgets import Static

from sshcore.prompts import HostKeyMismatch, HostKeyQuestion
from sshcore.visible_text import visible
from tui.app import StatusBar
from tui.panes.base import plain_subtitle
from tui.screens.dialogs import (
    ConfirmScreen,
    HostKeyChangedScreen,
    HostKeyScreen,
    PickScreen,
    SecretScreen,
    TextScreen,
)
from tui.screens.forms import PasteScreen
from tui.text import markup_literal, plain, styled

# Each was a crash or a restyle somewhere: Textual 8 tags rich's escape misses, a closing tag,
# an action link, ANSI and OSC sequences, bidi and zero-width characters, wide characters.
HOSTILE = [
    '[B="x]',
    "[$x]",
    "[Word]",
    "x[/] [/b]",
    "[@click=app.quit]quit[/]",
    "\\[b]not bold\\",
    "\x1b[31mred\x1b]0;title\x07",
    "\u202eevil\u200b",
    "漢字[b]",
]


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


def _shows(content: Any, text: str) -> bool:
    """Whether `content` (Content, Text or a plain str) shows `text`."""
    return visible(text, newlines=True) in getattr(content, "plain", content)


# -- the finding: any endpoint, before authentication --------------------------------------


async def test_a_hostile_endpoints_disconnect_reason_is_shown_not_parsed(tmp_path: Path) -> None:
    async with DisconnectingEndpoint('[B="x]') as endpoint:
        app = make_app(tmp_path, {"evil": {"hostname": "127.0.0.1", "port": endpoint.port}})
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("1", "T")
            await until(
                pilot,
                lambda: shown(app, TextScreen) and "failed" in screen_text(app),
                20,
                "the test results",
            )
            assert '[B="x]' in screen_text(app)
            assert endpoint.connections >= 1
            await pilot.press("escape", "c")  # connect: the reason goes to the row and the log
            await until(
                pilot,
                lambda: _shows(app.hosts_pane.state_cells("evil")[1], '[B="x]'),
                10,
                "the reason in the host's row",
            )
            assert app.is_running


# -- every place shows outside text literally ----------------------------------------------


def _dialogs(text: str) -> list[Any]:
    return [
        ConfirmScreen(text, text, yes=text),
        HostKeyScreen(HostKeyQuestion(text, text, text, text)),
        HostKeyChangedScreen(HostKeyMismatch(text, text, text, text, text, text, 7)),
        SecretScreen(text, text),
        PickScreen(text, [("v", text)]),
        TextScreen(text, text),
    ]


def _dialog_text(app: Any) -> str:
    parts = [screen_text(app)]
    for widget in app.screen.query("*"):
        parts.append(getattr(widget._border_title, "plain", ""))  # as drawn, not as markup
        parts += [str(o.prompt) for o in getattr(widget, "_options", [])]
    return "\n".join(parts)


@pytest.mark.parametrize("text", HOSTILE)
async def test_dialogs_top_line_cells_subtitles_toasts_and_logs_show_text_as_it_is(
    tmp_path: Path, text: str
) -> None:
    app = make_app(
        tmp_path,
        {"box": {"hostname": "10.0.0.1"}},
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        for dialog in _dialogs(text):
            app.push_screen(dialog)
            await until(pilot, lambda d=dialog: app.screen is d and shown(app, type(d)), 5, "it")
            assert _shows(Content(_dialog_text(app)), text), type(dialog).__name__
            dialog.dismiss(None)
            await pilot.pause()
        # A cell, a subtitle, the top line, a toast, a log line.
        table = app.hosts_pane.table
        table.update_cell("box", list(table.columns)[1], text)
        plain_subtitle(app.hosts_pane, text)
        app.say(text)
        app.notify(text)
        app.log_line("error", text)
        await pilot.pause(0.3)
        assert _shows(table.get_row("box")[1], text)
        assert _shows(app.hosts_pane._border_subtitle, text)
        assert _shows(app.query_one(StatusBar).render(), text)
        assert any(_shows(Content(n.message), text) for n in app._notifications)
        log = app.logs_pane.log_view
        assert any(_shows(Content(line.text), text) for line in log.lines)
        # The Logs pane's source tabs name the config's log sources.
        app.logs_pane.sources[f"box:/var/log/{text}"] = app.logs_pane.records
        app.logs_pane.show_sources()
        await pilot.pause()
        tabs = app.logs_pane.query_one(".sources", Static).render()
        assert _shows(tabs, f"box:/var/log/{text}")
        assert app.is_running


async def test_the_paste_preview_shows_an_option_as_written(tmp_path: Path) -> None:
    app = make_app(tmp_path, {})
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("1", "p")
        await until(pilot, lambda: isinstance(app.screen, PasteScreen), 5, "the paste form")
        await type_text(pilot, "ssh -o 'X[B=\"x]=1' h")
        await pilot.pause(0.3)
        assert 'X[B="x]' in screen_text(app)
        assert app.is_running


async def test_a_key_file_name_in_the_palette_is_shown_as_it_is(tmp_path: Path, home: Path) -> None:
    from sshcore import keys

    info = keys.generate_key(home / ".ssh" / 'id_[B="x]')
    app = make_app(tmp_path, {})
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: bool(app.keys_pane.keys), 10, "the key listed")
        await pilot.press("ctrl+p")
        await pilot.press(*"show id_")
        await pilot.pause(0.5)
        from textual.command import CommandList

        await until(pilot, lambda: bool(app.screen.query(CommandList)), 5, "the palette")
        options = app.screen.query_one(CommandList)
        await until(pilot, lambda: options.option_count > 0, 5, "a match")
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any(f"Keys: show {info.name}" in p for p in prompts), prompts
        assert app.is_running


# -- 10,000 generated strings through every way text is put on screen -----------------------

MARKUPISH = st.sampled_from(
    ["[", "]", "[/]", "[b]", "[B=", '"', "'", "$", "[$v]", "=", "@click", "\\", "/", " "]
)
CONTROLS = st.sampled_from(["\x1b[31m", "\x1b]0;t\x07", "\x9b", "\x00", "\r", "\n", "\t"])
UNICODE = st.sampled_from(["\u202e", "\u2066", "\u200b", "\ufeff", "漢", "字", "😀", "é"])
PIECES = st.one_of(MARKUPISH, CONTROLS, UNICODE, st.text(max_size=8))
HOSTILE_TEXT = st.lists(PIECES, max_size=24).map("".join)
LONG_LINE = st.builds(
    lambda s, n: ((s or "x") * n)[:n],
    HOSTILE_TEXT.filter(lambda s: "\n" not in s),
    st.integers(1, 64 * 1024),
)


def _render(content: Content, width: int) -> str:
    """Lay out and render as a widget would: wrap to `width`, every line to segments."""
    lines = content.wrap(width)
    return "".join(seg.text for line in lines for seg in line.render_segments())


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(st.lists(HOSTILE_TEXT, min_size=49, max_size=49), LONG_LINE)
def test_ten_thousand_generated_strings_render_everywhere_without_an_error(
    texts: list[str], long_line: str
) -> None:
    """200 examples of 50 strings each (one up to 64 KiB on one line): the dialogs' and
    forms' `plain`, the templates' `styled`, the palette's `markup_literal` (read back by
    Textual's own markup parser and fuzzy matcher) and the table cells' Text."""
    from rich.text import Text

    from tui.panes.base import _plain

    matcher = Matcher("a")
    for text in [*texts, long_line]:
        shown_text = visible(text, newlines=True)
        assert plain(text).plain == shown_text
        assert styled("[b]$t[/] and $t", t=text).plain == f"{shown_text} and {shown_text}"
        literal = markup_literal(text)
        assert Content.from_markup(literal).plain == shown_text
        assert matcher.highlight(literal).plain == shown_text
        cell = _plain(text)
        assert isinstance(cell, Text) and cell.plain == visible(text)
        _render(styled("[b]$t[/]", t=text), 40)


# -- the same 10,000 strings through every place in a running dashboard ---------------------


@pytest.fixture(scope="module")
def live_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One dashboard, run on an event loop of its own thread for the whole module, so that
    Hypothesis can hand it batch after batch (starting an app per example would take
    minutes). Its HOME and config are a temp folder of their own."""
    import asyncio
    import contextvars
    import os
    import threading

    folder = tmp_path_factory.mktemp("live")
    (folder / "home" / ".ssh").mkdir(parents=True)
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(folder / "home")
    hosts = {f"h{i:02d}": {"hostname": f"10.9.0.{i + 1}"} for i in range(BATCH)}
    app = make_app(folder, hosts)
    loop = asyncio.new_event_loop()
    up = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            state["pilot"], state["stop"] = pilot, asyncio.Event()
            state["context"] = contextvars.copy_context()  # Textual's active app is in it
            up.set()
            await state["stop"].wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    assert up.wait(60), "the dashboard did not start"
    try:
        yield app, state["pilot"], loop, state["context"]
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(60)
        if old_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old_home


BATCH = 50


async def _through_every_place(app: Any, pilot: Any, texts: list[str], n: int) -> None:
    """Each text into a cell, a subtitle, the top line, the Logs pane (a line and a source
    tab), a toast and a dialog (each batch the next kind), then a repaint of all of it."""
    table = app.hosts_pane.table
    detail = list(table.columns)[-1]
    for i, text in enumerate(texts):
        table.update_cell(f"h{i:02d}", detail, text)
        app.log_line("warning", text)
    joined = "\n".join(texts)
    plain_subtitle(app.hosts_pane, texts[-1])
    app.say(texts[0])
    app.notify(joined[:4096])
    logs = app.logs_pane
    for key in [key for key in logs.sources if key != "events"]:
        logs.remove_source(key)
    logs.sources[f"h00:cmd:{texts[1]}"] = logs.records
    logs.show_sources()
    await pilot.pause()
    dialogs = _dialogs(joined[:8192])
    dialog = dialogs[n % len(dialogs)]
    app.push_screen(dialog)
    await pilot.pause()
    dialog.dismiss(None)
    app.clear_notifications()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(st.lists(HOSTILE_TEXT, min_size=BATCH, max_size=BATCH))
@pytest.mark.timeout(900)
def test_ten_thousand_generated_strings_through_a_running_dashboard(
    live_dashboard: Any, texts: list[str]
) -> None:
    """200 batches of 50: none ends the app (an exception in a render would)."""
    import concurrent.futures

    app, pilot, loop, context = live_dashboard
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    app.batches = n = getattr(app, "batches", 0) + 1

    def start() -> None:  # on the app's loop, in the app's context (its tasks copy it)
        task = context.run(loop.create_task, _through_every_place(app, pilot, texts, n))
        task.add_done_callback(
            lambda t: done.set_exception(e) if (e := t.exception()) else done.set_result(None)
        )

    loop.call_soon_threadsafe(start)
    done.result(60)
    assert app.is_running and app.return_code is None
