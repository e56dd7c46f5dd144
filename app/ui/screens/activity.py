"""Activity: everything that happened, as sentences; filters; a chart of accesses; export."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import flet as ft

from app.ui import theme, widgets
from app.ui.widgets import Ui, button, muted
from app.ui.words import (
    OUTCOMES,
    Names,
    daily_access_counts,
    entry_context,
    entry_profile,
    event_outcome,
    event_person,
    event_resources,
    event_sentence,
    iso_time,
    relative_time,
    time_words,
)

LIMIT = 500
SHOWN = 150
ALL = "*"
ICONS = {"asked": ft.Icons.MARK_EMAIL_UNREAD_OUTLINED, "shared": ft.Icons.CHECK_CIRCLE_OUTLINE,
         "denied": ft.Icons.BLOCK, "stopped": ft.Icons.CANCEL_OUTLINED, "access": ft.Icons.VISIBILITY_OUTLINED,
         "other": ft.Icons.INFO_OUTLINE}
COLORS = {"shared": theme.GOOD, "denied": theme.DANGER, "stopped": theme.WARN}


class ActivityScreen:
    key = "activity"
    title = "Activity"

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        self.person = ALL
        self.record = ALL
        self.outcome = ALL
        self.shown = SHOWN
        self.chart = ft.Container()
        self.filters = ft.Row(wrap=True, spacing=8, run_spacing=8)
        self.count = muted("", size=13)
        self.timeline = ft.Column(spacing=0)
        self.more = ft.Container()
        exports = ft.Row([button("Export as JSON", lambda _: self.export("json"), kind="outlined",
                                 icon=ft.Icons.DOWNLOAD),
                          button("Export as CSV", lambda _: self.export("csv"), kind="outlined",
                                 icon=ft.Icons.TABLE_VIEW)], wrap=True, spacing=8, run_spacing=8)
        self.root, _ = ui.screen(self.chart, self.filters, exports, self.count, self.timeline, self.more)

    # data ------------------------------------------------------------------------------------------------
    def _entries(self, names: Names) -> list[dict[str, Any]]:
        """The profile acted for: a dependent's own entries; for the owner, theirs and the agent's
        (apps introducing themselves, trusted organisations, keys), not a dependent's."""
        ui = self.ui
        ui.current()
        several = len(names.profiles) > 1
        if ui.profile == "me":
            raw = [e for e in ui.owner.audit(limit=LIMIT) if entry_profile(e, names) in (None, "me")]
        else:
            raw = ui.owner.audit(limit=LIMIT, profile=ui.profile)
        out = []
        for e in raw:
            out.append({**e, "_sentence": event_sentence(e, names), "_person": event_person(e, names),
                        "_records": event_resources(e, names), "_outcome": event_outcome(e),
                        "_context": entry_context(e, names) if several else None})
        return out

    def _matches(self, e: dict[str, Any]) -> bool:
        return ((self.person == ALL or e["_person"] == self.person)
                and (self.record == ALL or self.record in e["_records"])
                and (self.outcome == ALL or e["_outcome"] == self.outcome))

    # view ------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        ui = self.ui
        names = ui.names()
        now = ui.now()
        entries = self._entries(names)
        self.chart.content = self._chart(daily_access_counts(entries, now))
        people = sorted({e["_person"] for e in entries if e["_person"]}, key=str.lower)
        records = sorted({r for e in entries for r in e["_records"]}, key=str.lower)
        self.filters.controls = [
            self._filter("Person", "Filter by person", [(ALL, "Everyone"), *((p, p) for p in people)], "person"),
            self._filter("Record", "Filter by record", [(ALL, "All records"), *((r, r) for r in records)], "record"),
            self._filter("What happened", "Filter by what happened", [(ALL, "Everything"), *OUTCOMES], "outcome"),
        ]
        shown = [e for e in reversed(entries) if self._matches(e)]
        filtered = any(v != ALL for v in (self.person, self.record, self.outcome))
        self.count.value = (f"{len(shown)} of the last {len(entries)} events" if filtered
                            else f"The last {len(entries)} events, newest first")
        self.timeline.controls = [self._row(e, now) for e in shown[: self.shown]] or [
            widgets.empty(ft.Icons.HISTORY, "Nothing to show" if filtered else "Nothing has happened yet")]
        self.more.content = (button("Show more", lambda _: self._show_more(), kind="text")
                             if len(shown) > self.shown else None)

    def _show_more(self) -> None:
        self.shown += SHOWN
        self.refresh()
        self.ui.page.update()

    def _filter(self, label: str, a11y: str, options: list[tuple[str, str]], attr: str) -> ft.Control:
        current = getattr(self, attr)
        if current not in {k for k, _ in options}:
            current = ALL
            setattr(self, attr, ALL)

        def chosen(e: Any) -> None:
            setattr(self, attr, e.control.value or ALL)
            self.shown = SHOWN
            self.refresh()
            self.ui.page.update()

        place, _ = widgets.dropdown(label, options, current, on_select=chosen, width=220, a11y=a11y)
        return place

    def _row(self, e: dict[str, Any], now: float) -> ft.Control:
        outcome = e["_outcome"]
        ts = float(e.get("ts") or 0)
        return ft.Container(
            ft.Row([ft.Icon(ICONS[outcome], size=20, color=COLORS.get(outcome, theme.MUTED)),
                    ft.Column([ft.Text(e["_sentence"], size=14),
                               *([ft.Text(e["_context"], size=12, color=theme.MUTED)] if e.get("_context") else []),
                               ft.Text(relative_time(ts, now), size=12, color=theme.MUTED,
                                       tooltip=time_words(ts))], spacing=2, expand=True)],
                   vertical_alignment=ft.CrossAxisAlignment.START, spacing=12),
            padding=ft.Padding.symmetric(vertical=8),
            border=ft.Border.only(bottom=ft.BorderSide(1, ft.Colors.OUTLINE_VARIANT)))

    def _chart(self, days: list[tuple[date, int]]) -> ft.Control:
        top = max((n for _, n in days), default=0)
        total = sum(n for _, n in days)
        bars: list[ft.Control] = []
        for d, n in days:
            height = 4 + (76 * n / top if top else 0)
            bars.append(ft.Column([
                ft.Text(str(n) if n else "", size=10, color=theme.MUTED),
                ft.Container(width=14, height=height, border_radius=ft.BorderRadius.only(top_left=3, top_right=3),
                             bgcolor=ft.Colors.PRIMARY if n else ft.Colors.OUTLINE_VARIANT,
                             tooltip=f"{d.day} {d:%b}: {n}"),
                ft.Text(str(d.day), size=10, color=theme.MUTED),
            ], spacing=2, horizontal_alignment=ft.CrossAxisAlignment.CENTER, alignment=ft.MainAxisAlignment.END,
                tight=True))
        busiest = max(days, key=lambda x: x[1]) if total else None
        whose = self.ui.whose()
        said = (f"Access to {whose} records in the last 14 days: {total} in all"
                + (f", most on {busiest[0].day} {busiest[0]:%b} ({busiest[1]})." if busiest else "."))
        chart = ft.Semantics(label=said, exclude_semantics=True, content=ft.Row(
            bars, alignment=ft.MainAxisAlignment.SPACE_BETWEEN, vertical_alignment=ft.CrossAxisAlignment.END,
            height=112))
        return widgets.card(ft.Text(f"Access to {whose} records, last 14 days", weight=ft.FontWeight.W_600),
                            muted(f"{total} time{'s' if total != 1 else ''} an app was given or checked access",
                                  size=13), chart)

    # export ----------------------------------------------------------------------------------------------
    def export(self, fmt: str) -> None:
        ui = self.ui
        names = ui.names()
        entries = [e for e in self._entries(names) if self._matches(e)]
        rows = [{"time": iso_time(float(e.get("ts") or 0)), "what_happened": e["_sentence"],
                 "person": e["_person"] or "", "records": "; ".join(e["_records"]), "about": e["_context"] or "",
                 "kind": e["_outcome"], "event": e.get("event"), "seq": e.get("seq")} for e in entries]
        folder = Path(ui.ctx.data_dir) / "exports"
        stamp = date.fromtimestamp(ui.now()).isoformat()
        path = folder / f"activity-{stamp}.{fmt}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if fmt == "json":
                path.write_text(json.dumps({"exported_at": iso_time(ui.now()), "events": rows,
                                            "raw": [{k: v for k, v in e.items() if not k.startswith("_")}
                                                    for e in entries]}, indent=2, ensure_ascii=False),
                                encoding="utf-8")
            else:
                buf = io.StringIO()
                writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["time", "what_happened"])
                writer.writeheader()
                writer.writerows(rows)
                path.write_text(buf.getvalue(), encoding="utf-8")
        except OSError as exc:
            ui.toast(f"Could not save the export: {exc.strerror or exc}", error=True)
            return
        ui.toast(f"Saved {len(rows)} events to {path}")
