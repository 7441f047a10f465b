"""What every pane shares: a titled border, a table, and a `/` filter line."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual.widgets.data_table import RowDoesNotExist

from sshcore.api import visible

from ..format import clip

if TYPE_CHECKING:
    from textual.widgets import Input

    from ..app import DevTuiApp

CURSOR_KEYS = {"up": "cursor_up", "down": "cursor_down"}  # handled by the table itself


class PaneTable(DataTable[Any]):
    """A row-cursor table whose own bindings stay out of the footer.

    Text cells are shown as they are: DataTable reads a str cell as markup, so a server's
    error, a remote program's name or a key comment holding `[/]` would end the app
    (MarkupError) and `[reverse]` would restyle the row. Styled cells are Text already.

    Only DataTable's public API is used here (issue 16): a Textual release may change any
    of its internals."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)

    def add_row(self, *cells: Any, **kwargs: Any) -> Any:
        return super().add_row(*(_plain(c) for c in cells), **kwargs)

    def update_cell(self, row_key: Any, column_key: Any, value: Any, **kwargs: Any) -> None:
        super().update_cell(row_key, column_key, _plain(value), **kwargs)

    async def on_key(self, event: events.Key) -> None:
        # Up and Down move the cursor here, at once. Otherwise the key goes up through the
        # pane, the grid and the screen to the app, which then looks up the table's own
        # binding: four more trips through the event loop, 3-20 ms under load.
        action = CURSOR_KEYS.get(event.key)
        if action is None:
            return
        event.stop()
        event.prevent_default()
        await self.run_action(action)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value) and isinstance(self.parent, FilterablePane):
            # Rows coming into view that waited are made now; but after what moved the view
            # is done: a rebuild (clear(), on a resize or a reordering save) scrolls to the
            # top before its rows and columns are back.
            self.call_later(self.parent.refresh_stale)

    def rows_in_view(self, margin: int = 2) -> range:
        """Indexes of the rows drawn now (a few more either side)."""
        first = int(self.scroll_y)
        return range(max(0, first - margin), first + self.size.height + margin)

    def update_cells(self, changes: list[tuple[str, Any, Any]]) -> None:
        """Many `update_cell(row, column, value)` at once, for rows and columns the table
        has. A cell wider than its column re-measures that column (update_width); a
        narrower one does not (that would measure every row of it: 70% of the CPU with
        700 busy rows)."""
        columns = self.columns
        for row_key, column_key, value in changes:
            cell = _plain(value)
            plain = cell.plain if isinstance(cell, Text) else str(cell)
            wider = cell_len(plain) > columns[column_key].content_width
            super().update_cell(row_key, column_key, cell, update_width=wider)


def _plain(cell: Any) -> Any:
    return Text(visible(cell), end="") if isinstance(cell, str) else cell


def plain_subtitle(widget: Widget, text: str) -> None:
    """Set `widget`'s border subtitle to `text` as it is (clipped to the border), never read
    as markup: subtitles show names and messages that come from servers and files."""
    widget.border_subtitle = Content(clip(visible(text), max(10, widget.size.width - 6)))


class EmptyNote(Static, can_focus=True):
    """What an empty pane says to do; focusable so that the pane's keys still work."""


class Pane(Vertical):
    """A titled pane. Subclasses fill `compose_body` and `refresh_rows`."""

    title: ClassVar[str] = ""
    number: ClassVar[int] = 0
    can_focus = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(classes="pane", **kwargs)
        self.filter_text = ""

    @property
    def dashboard(self) -> DevTuiApp:
        # Kept: rows ask for it many times a refresh, and `self.app` is a context lookup.
        app: DevTuiApp | None = self.__dict__.get("_dashboard")
        if app is None:
            from ..app import DevTuiApp

            assert isinstance(self.app, DevTuiApp)
            app = self._dashboard = self.app
        return app

    def on_mount(self) -> None:
        self.border_title = f"[b]{self.number}[/] {self.title}"

    def filter_box(self) -> Input:
        """The pane's `/` filter line, shown and focused (made the first time)."""
        from textual.widgets import Input

        found = self.query(".filter")
        if found:
            box = found.first(Input)
        else:
            box = Input(placeholder="filter (esc clears)", classes="filter", id=f"{self.id}-filter")
            self.mount(box, before=0)
        box.display = True
        box.call_after_refresh(box.focus)
        return box

    def close_filter(self, event: Any) -> bool:
        """Escape in the filter line: clear it, hide it; True when that is what happened."""
        found = self.query(".filter")
        if event.key != "escape" or not found or not found.first().has_focus:
            return False
        event.stop()
        from textual.widgets import Input

        box = found.first(Input)
        box.value = ""
        box.display = False
        return True

    def focus_main(self) -> None:
        """Give the keyboard to the pane's main widget."""
        self.main_widget().focus()

    def main_widget(self) -> Any:
        raise NotImplementedError


class FilterablePane(Pane):
    """A pane with a table and a `/` filter. Panes whose table has more to show when wide
    set WIDE_AT and WIDE_COLUMNS; `self.wide` says which set is shown."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    WIDE_COLUMNS: ClassVar[tuple[str, ...]] = ()
    WIDE_AT: ClassVar[int] = 0  # pane width from which WIDE_COLUMNS are shown; 0: never

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wide: bool | None = None
        # Rows whose host or tunnel changed while out of view: made at the next tick or
        # when they scroll into view (see `in_view`).
        self.stale: set[str] = set()

    def on_mount(self) -> None:
        super().on_mount()
        self.set_columns()
        self.refresh_rows(full=True)

    def on_resize(self) -> None:
        if self.set_columns():
            self.refresh_rows(full=True)

    def set_columns(self) -> bool:
        """Pick the column set for the pane's width; True when it changed."""
        wide = bool(self.WIDE_AT) and self.size.width >= self.WIDE_AT
        if wide == self.wide:
            return False
        self.wide = wide
        self.table.clear(columns=True)
        self.table.add_columns(*(self.WIDE_COLUMNS if wide else self.COLUMNS))
        return True

    def compose(self) -> ComposeResult:
        # The `/` filter line is made on first use (filter_box): a faster first paint.
        yield from self.compose_body()
        yield EmptyNote("", classes="empty")

    def compose_body(self) -> ComposeResult:
        yield PaneTable(id=f"{self.id}-table")

    @property
    def table(self) -> PaneTable:
        return self.query_one(PaneTable)

    def main_widget(self) -> Any:
        return self.table if self.table.display else self.query_one(EmptyNote)

    def action_filter(self) -> None:
        self.filter_box()

    def on_input_changed(self, event: Input.Changed) -> None:
        if "filter" in event.input.classes:
            event.stop()
            self.filter_text = event.value.strip().lower()
            self.refresh_rows(full=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if "filter" in event.input.classes:
            event.stop()
            self.table.focus()

    def on_key(self, event: Any) -> None:
        if self.close_filter(event):
            self.table.focus()

    def matches(self, *fields: str) -> bool:
        """Whether a row with these texts passes the filter."""
        return not self.filter_text or any(self.filter_text in f.lower() for f in fields)

    def set_empty_text(self, text: str) -> None:
        """Show `text` in place of the table (an empty pane explains what to do)."""
        empty = self.query_one(EmptyNote)
        if getattr(self, "_empty_text", None) == text:
            return
        self._empty_text = text
        refocus = empty.has_focus or self.table.has_focus
        empty.update(text)
        empty.display = bool(text)
        self.table.display = not text
        if refocus:
            self.main_widget().focus()

    def row_index(self, key: str) -> int:
        """The index of the row of `key` (a host, tunnel or key path); 0 when it has none."""
        keys = [str(k.value) for k in self.table.rows]
        return keys.index(key) if key in keys else 0

    def select_row(self, key: str) -> None:
        """Put the cursor on the row of `key` (the first row when it has none)."""
        self.table.move_cursor(row=self.row_index(key))

    def selected_key(self) -> str | None:
        """The row key (host or tunnel name) under the cursor."""
        table = self.table
        if table.row_count == 0:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except Exception:  # an empty or just-rebuilt table has no cell there
            return None
        return None if row_key.value is None else str(row_key.value)

    def refresh_rows(
        self, full: bool = False, only: Collection[str] | None = None, saved: bool = False
    ) -> None:
        """Redraw the rows (`only`: just these keys, when the table has them all already;
        `saved`: only the config changed, see `kept_rows`)."""
        raise NotImplementedError

    def in_view(self, keys: Collection[str]) -> set[str]:
        """Of `keys`, those whose rows are in view or under the cursor, to be made now; the
        others are kept in `stale`. With 200 busy tunnels every flush of events named every
        tunnel, and making the rows nobody sees was most of the flush (4 a second)."""
        table = self.table
        if not table.display:
            return set(keys)
        view = table.rows_in_view()
        selected = self.selected_key()
        now: set[str] = set()
        for key in keys:
            try:
                shown = key == selected or table.get_row_index(key) in view
            except RowDoesNotExist:  # not in the table (filtered out, or new): made now
                shown = True
            if shown:
                now.add(key)
            else:
                self.stale.add(key)
        return now

    def take_stale(self) -> set[str]:
        """The rows that waited (the tick makes them)."""
        stale, self.stale = self.stale, set()
        return stale

    def refresh_stale(self) -> None:
        """Make the rows that waited and are in view now (the table scrolled)."""
        if not self.stale:
            return
        waiting = self.take_stale()
        now = self.in_view(waiting)
        if now:
            self.refresh_rows(only=now)

    def kept_rows(
        self, items: dict[str, Any], basis: tuple[Any, ...], saved: bool, make: Any
    ) -> dict[str, tuple[Any, ...]]:
        """The rows for `items` (key -> what the row is made from): `make(key, item)`, or
        after a save or a reload (`saved`) the cells already shown for a row whose item and
        `basis` (widths, columns) are what they were. The state the other cells show is
        kept current by the core's events, so a save of one host redraws one row, not 500
        (~10 ms of the screen's time with 700 rows, at every save and reload)."""
        drawn: dict[str, Any] = self.__dict__.get("_drawn_from", {})
        shown: dict[str, tuple[Any, ...]] = self.__dict__.get("_shown", {})
        same = saved and basis == self.__dict__.get("_drawn_basis")
        rows: dict[str, tuple[Any, ...]] = {}
        kept: set[str] = set()
        for key, item in items.items():
            if same and key in shown and key in drawn and drawn[key] == item:
                rows[key] = shown[key]
                kept.add(key)
            else:
                rows[key] = make(key, item)
        # A kept row that was waiting (out of view, see `in_view`) still waits for the tick.
        self.stale &= kept
        self._drawn_from = items
        self._drawn_basis = basis
        return rows

    def sync_rows(self, rows: dict[str, tuple[Any, ...]], full: bool) -> None:
        """Make the table show `rows` (key -> cells), touching only the cells that changed.

        Rows gone are removed and new rows appended in place; the table is rebuilt only when
        the order changed or most rows differ. A save or a reload then costs the rows it
        touched: clearing 500 rows and adding them back took 70 ms of the screen's time."""
        del full  # every refresh compares with what is shown; `full` no longer forces a rebuild
        table = self.table
        current = [str(k.value) for k in table.rows]
        shown: dict[str, tuple[Any, ...]] = getattr(self, "_shown", {})
        kept = [key for key in current if key in rows]
        wanted = list(rows)
        removed = len(current) - len(kept)
        added = wanted[len(kept) :]
        selected = self.selected_key()
        if (
            list(shown) != current  # the table was cleared (new columns)
            or kept != wanted[: len(kept)]  # order changed, or a row comes in between
            or removed + len(added) > max(len(kept), 8)  # mostly new: a rebuild is cheaper
        ):
            table.clear()
            for key, cells in rows.items():
                table.add_row(*cells, key=key)
        else:
            for key in current:
                if key not in rows:
                    table.remove_row(key)
                    shown.pop(key, None)
            self.update_rows(rows)
            for key in added:
                table.add_row(*rows[key], key=key)
        if selected in rows and self.selected_key() != selected:
            table.move_cursor(row=wanted.index(selected))
        self._shown = dict(rows)

    def update_rows(self, rows: dict[str, tuple[Any, ...]]) -> None:
        """Update the cells that changed in rows the table already has (no rows added)."""
        table = self.table
        shown: dict[str, tuple[Any, ...]] = getattr(self, "_shown", {})
        columns = list(table.columns)
        changes: list[tuple[str, Any, Any]] = []
        for key, cells in rows.items():
            old = shown.get(key)
            if old is None or old == cells:
                continue
            # Only a wider cell re-measures its column (update_cells): DataTable measures
            # every row of it when a cell narrows (measured: 70% of the CPU, 700 busy rows).
            changes.extend(
                (key, columns[i], cell) for i, cell in enumerate(cells) if old[i] != cell
            )
            shown[key] = cells
        table.update_cells(changes)
