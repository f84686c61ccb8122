"""The main window: record on the left, the open sessions below it, the selected session's views in the centre."""
from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QWidget,
)

from massivelens.resources import EXAMPLE_SESSION
from massivelens.sessions.reader import SessionError
from massivelens.sessions.summary_schema import SUMMARY_H5

from .clip_export import CLIP_FILTER, CLIP_VIEWS, export_clip
from .compare import CompareWindow
from .export import (
    ExportError,
    ExportPreferences,
    export_all,
    export_image,
    export_widget,
    resolution_menu,
    save_dialog,
    with_suffix,
)
from .help import add_help_menu
from .live import LiveSession
from .naming import fresh_path, slug
from .probe_panel import ProbePanel, probe_job
from .record_panel import RecordPanel
from .remembered import LAUNCHED, restore_window, save_window, value
from .selection import Selection
from .session_data import SessionData
from .session_list import SessionList
from .session_view import SessionView
from .summary_view import SummaryView
from .transport_editor import TransportEditor
from .worker import Job, JobQueue, JobRunner, engine_job

ORG = APP = "MassiveLens"
RECENT_KEY, SESSIONS_DIR_KEY, PNG_SCALE_KEY = "recent_files", "sessions_dir", "export/png_scale"
MAX_RECENT = 10
SESSION_FILTER = "MassiveLens session or batch summary (*.h5);;All files (*)"
VIEW_NAMES = {"channel_heatmap": "Channel heatmap", "step_heatmap": "Block × step heatmap",
              "frame_heatmap": "Block × frame heatmap (video)", "ranking": "Ranking table",
              "token_map": "Image and token map", "cluster_overlay": "Token clusters"}


def make_settings() -> QSettings:
    """INI settings in the user's config folder (tests point QSettings.setPath at a temporary folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def present(window: QWidget) -> None:
    """Show a window in front; the offscreen platform (tests, screenshots) cannot raise windows and says so."""
    window.show()
    if QGuiApplication.platformName() != "offscreen":
        window.raise_()
        window.activateWindow()


class MainWindow(QMainWindow):
    """Every action has a dialog-free method (open_path, save_as, export_figures, ...) that tests call too."""

    def __init__(self, settings: QSettings | None = None, job: Job = engine_job, probe: Job = probe_job):
        super().__init__()
        self.settings = settings or make_settings()
        self.export_preferences = ExportPreferences(value(self.settings, PNG_SCALE_KEY, ExportPreferences.png_scale, float))
        self.selection = Selection()
        self.view = SessionView(self.selection)
        self.record_panel = RecordPanel()
        self.session_list = SessionList()
        self.jobs = JobQueue(self)
        self.runner = JobRunner(job, self.jobs, "recording", self)
        self.error_box: QMessageBox | None = None
        self.compare_windows: list[CompareWindow] = []
        self.summary_windows: list[SummaryView] = []
        self.probe_panel = ProbePanel(self.record_panel, self.sessions_dir().parent / "probes", probe, self.jobs, self.export_preferences)
        self.transport_editor = TransportEditor(self.sessions_dir().parent / "transport", queue=self.jobs)
        self._closing = False
        self.live = LiveSession(self)  # the session being recorded, shown as it grows
        self.setCentralWidget(self.view)
        self._dock()
        self._menus()
        self._connect()
        self.setWindowTitle(APP)
        self.record_panel.restore(self.settings)
        self.view.restore(self.settings)
        if not restore_window(self.settings, self, self.splitters()):
            self.resize(1400, 900)
        self.statusBar().showMessage("Ready. Record a generation, or open a session (Ctrl+O).")

    # Construction --------------------------------------------------------------------------------
    def splitters(self) -> dict[str, QSplitter]:
        return {"side": self.side, **self.view.splitters()}

    def open_first_launch(self) -> SessionData | None:
        """On the very first launch, the example session, so the views show what they are for."""
        if value(self.settings, LAUNCHED, False, bool):
            return None
        self.settings.setValue(LAUNCHED, True)
        return self.open_example()

    def open_example(self) -> SessionData | None:
        return self.open_path(EXAMPLE_SESSION)

    def _dock(self) -> None:
        self.side = side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.record_panel)
        side.addWidget(self.session_list)
        side.setSizes([430, 400])
        dock = QDockWidget("Record and sessions", self)
        dock.setObjectName("side")
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setWidget(side)
        dock.setMinimumWidth(260)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

    def _menus(self) -> None:
        menu = self.menuBar().addMenu("&File")
        self._action(menu, "&Open…", self._open_dialog, QKeySequence.StandardKey.Open)
        self._action(menu, "Open &Batch Folder…", self._open_batch_dialog)
        self.recent_menu = menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._action(menu, "Save &As…", self._save_as_dialog, QKeySequence.StandardKey.SaveAs)
        self._action(menu, "&Close Session", self._close_current, QKeySequence.StandardKey.Close)
        menu.addSeparator()
        self._action(menu, "&Export Figures…", self._export_figures_dialog, QKeySequence("Ctrl+E"))
        views = menu.addMenu("Export &View")
        for name, title in VIEW_NAMES.items():
            self._action(views, f"{title}…", lambda _=False, n=name: self._export_view_dialog(n))
        self._action(menu, "Export &Image…", self._export_image_dialog)
        clips = menu.addMenu("Export Video C&lip")
        for name in CLIP_VIEWS:
            self._action(clips, f"{VIEW_NAMES[name]} over every frame…", lambda _=False, n=name: self._export_clip_dialog(n))
        self.resolution_actions = resolution_menu(menu.addMenu("PNG &Resolution"), self.export_preferences,
                                                  lambda scale: self.settings.setValue(PNG_SCALE_KEY, scale))
        menu.addSeparator()
        self._action(menu, "&Compare Selected", self._compare_selected)
        menu.addSeparator()
        self._action(menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        analysis = self.menuBar().addMenu("&Analysis")
        self._action(analysis, "Disruption &Probe…", self.show_probe_panel)
        self._action(analysis, "&Transport Editor…", self.show_transport_editor)
        add_help_menu(self, self.open_example)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(shortcut)
        return action

    def _connect(self) -> None:
        self.record_panel.recordRequested.connect(self.start_recording)
        self.record_panel.cancelRequested.connect(self.cancel_recording)
        self.runner.queued.connect(lambda place: self.record_panel.set_queued(place, self.jobs.describe_active()))
        self.runner.started.connect(self._recording_started)
        self.runner.progress.connect(self.record_panel.show_progress)
        self.runner.progress.connect(lambda progress: self._closing or self.live.progress(progress))
        self.live.opened.connect(self._live_opened)
        self.live.grew.connect(self._live_grew)
        self.runner.finished.connect(self._recorded)
        self.runner.failed.connect(self._record_failed)
        self.runner.cancelled.connect(self._record_cancelled)
        self.session_list.currentChanged.connect(self._show)
        self.session_list.openRequested.connect(self._open_dialog)
        self.session_list.compareRequested.connect(self.compare)
        self.session_list.closeRequested.connect(self.close_session)

    # Messages ------------------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        """One line in the status bar and a non-blocking dialog; never a traceback."""
        self.statusBar().showMessage(text)
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, APP, text, QMessageBox.StandardButton.Ok, self)
        self.error_box.open()

    # Sessions ------------------------------------------------------------------------------------
    def open_path(self, path: Path) -> SessionData | SummaryView | None:
        """Open and show a session, or a batch's summary (its folder or summary.h5); a bad file gives one
        message and changes nothing else."""
        path = Path(path)
        if path.is_dir() or path.name == SUMMARY_H5:
            return self.open_summary(path)
        try:
            data = SessionData.open(path)
        except SessionError as exc:
            self.show_error(str(exc))
            return None
        self.session_list.add(data)
        start = data.strongest()
        if start is not None:
            self.selection.set(stream="image", **start)
        self._remember(data.path)
        self.statusBar().showMessage(f"Opened {data.path}")
        if data.problems:
            self.show_error(f"{data.path.name} is damaged; what could be read is shown:\n" + "\n".join(data.problems))
        return data

    def open_summary(self, path: Path) -> SummaryView | None:
        """A batch summary opens in a window of its own, beside the sessions."""
        try:
            view = SummaryView.open(path, self.export_preferences)
        except SessionError as exc:
            self.show_error(str(exc))
            return None
        view.show()
        self._keep_until_closed(view, self.summary_windows)
        self._remember(path)
        self.statusBar().showMessage(f"Opened the batch summary {path}")
        return view

    def current(self) -> SessionData | None:
        return self.session_list.current()

    def _show(self, data: SessionData | None) -> None:
        self.view.set_data(data)
        self.setWindowTitle(f"{APP} · {data.path.name}" if data else APP)

    def save_as(self, target: Path) -> SessionData | None:
        """Copy the current session file and continue with the copy (sessions are written once, then read)."""
        data = self.current()
        if data is None:
            self.show_error("No session to save.")
            return None
        target = with_suffix(Path(target), SESSION_FILTER)
        if data is self.live.data:
            self.show_error(f"{data.path.name} is still being recorded: save it once the recording has ended.")
            return None
        if target.resolve() == data.path.resolve():
            return data
        if target.resolve() in self.open_files():
            self.show_error(f"{target.name} is open in MassiveLens: close it first, or save under another name.")
            return None
        try:
            shutil.copyfile(data.path, target)
        except OSError as exc:
            self.show_error(f"Could not save {target}: {exc.strerror or exc}")
            return None
        self.session_list.remove(data)
        return self.open_path(target)

    def open_files(self) -> set[Path]:
        """Every session file a window of the app reads, and the one being recorded: never overwritten."""
        files = {d.path.resolve() for d in self.session_list.sessions()}
        files |= {d.path.resolve() for window in self.compare_windows for d in window.sessions()}
        if self.runner.params is not None and self.runner.running():
            files.add(Path(self.runner.params.out).resolve())
        return files

    def close_session(self, data: SessionData) -> None:
        """Unlist a session and release its file; the next one in the list is shown."""
        self.live.forget(data)
        self.session_list.remove(data)
        self.statusBar().showMessage(f"Closed {data.path.name}")

    def recent_files(self) -> list[str]:
        return [str(p) for p in (self.settings.value(RECENT_KEY, []) or [])]

    def _remember(self, path: Path) -> None:
        entry = str(Path(path).resolve())
        recent = [entry] + [p for p in self.recent_files() if p != entry]
        self.settings.setValue(RECENT_KEY, recent[:MAX_RECENT])
        self.settings.sync()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for entry in recent:
            self._action(self.recent_menu, entry, lambda _=False, p=entry: self.open_path(Path(p)))
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def compare(self, first: SessionData, second: SessionData) -> CompareWindow | None:
        """A comparison window on files of its own, opened at this window's selection."""
        try:
            window = CompareWindow.open(first.path, second.path, self.selection, self.export_preferences)
        except SessionError as exc:
            self.show_error(str(exc))
            return None
        window.show()
        self._keep_until_closed(window, self.compare_windows)
        return window

    def _keep_until_closed(self, window: QWidget, windows: list) -> None:
        """Hold a window while it is open; once closed it is dropped and deleted, its files and caches with it."""
        windows.append(window)
        window.closed.connect(lambda: self._release(window, windows))

    @staticmethod
    def _release(window: QWidget, windows: list) -> None:
        if window in windows:
            windows.remove(window)
            window.deleteLater()

    def _compare_selected(self) -> None:
        selected = [item.data(Qt.ItemDataRole.UserRole) for item in self.session_list.list.selectedItems()]
        if len(selected) != 2:
            self.show_error("Select exactly two sessions in the list (Ctrl+click) to compare them.")
            return
        self.compare(*selected)

    # Export --------------------------------------------------------------------------------------
    def export_figures(self, folder: Path) -> list[Path]:
        data = self.current()
        if data is None:
            self.show_error("No session to export.")
            return []
        scale = self.export_preferences.png_scale
        return self._exporting(lambda: export_all(self.view.figures(), data.image, Path(folder), scale), folder)

    def export_view(self, name: str, path: Path) -> list[Path]:
        if name not in self.view.figures():
            self.show_error(f"{VIEW_NAMES[name]}: a video session's view; open a video session to export it.")
            return []
        scale = self.export_preferences.png_scale
        return self._exporting(lambda: [export_widget(self.view.figures()[name], Path(path), scale)], path)

    def export_image(self, path: Path) -> list[Path]:
        """The generated image, or the video's frame on screen."""
        data = self.current()
        if data is None or data.image is None:
            self.show_error("This session has no image (the run did not finish).")
            return []
        picture = data.picture(min(self.selection.frame, data.frame_count - 1))
        return self._exporting(lambda: [export_image(picture, Path(path))], path)

    def export_clip(self, name: str, path: Path) -> list[Path]:
        """A view over every frame of the video session, as an animated GIF or WebP."""
        data = self.current()
        if data is None or not data.is_video:
            self.show_error("Open a video session to export a clip.")
            return []
        return self._exporting(lambda: [export_clip(self.view.figures()[name], self.selection, data, Path(path))], path)

    def _exporting(self, write, target: Path) -> list[Path]:
        try:
            written = write()
        except (ExportError, OSError) as exc:
            self.show_error(f"Export failed: {exc}")
            return []
        self.statusBar().showMessage(f"Exported {len(written)} file(s) to {target}")
        return written

    # Dialogs -------------------------------------------------------------------------------------
    def _last_dir(self) -> str:
        data = self.current()
        return str(data.path.parent) if data else str(self.sessions_dir())

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", self._last_dir(), SESSION_FILTER)
        if path:
            self.open_path(Path(path))

    def _open_batch_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a batch folder (python main.py batch --out)", self._last_dir())
        if folder:
            self.open_path(Path(folder))

    def _close_current(self) -> None:
        if self.current() is not None:
            self.close_session(self.current())

    def _save_as_dialog(self) -> None:
        if self.current() is None:
            self.show_error("No session to save.")
            return
        path = save_dialog(self, "Save session as", Path(self._last_dir()), SESSION_FILTER)
        if path:
            self.save_as(path)

    def _export_figures_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export all figures into folder", self._last_dir())
        if folder:
            self.export_figures(Path(folder))

    def _export_view_dialog(self, name: str) -> None:
        path = save_dialog(self, f"Export {VIEW_NAMES[name]}", Path(self._last_dir()) / f"{name}.png")
        if path:
            self.export_view(name, path)

    def _export_clip_dialog(self, name: str) -> None:
        path = save_dialog(self, f"Export {VIEW_NAMES[name]} clip", Path(self._last_dir()) / f"{name}.gif", CLIP_FILTER)
        if path:
            self.export_clip(name, path)

    def _export_image_dialog(self) -> None:
        path = save_dialog(self, "Export image", Path(self._last_dir()) / "image.png", "PNG image (*.png)")
        if path:
            self.export_image(path)

    # Recording -----------------------------------------------------------------------------------
    def sessions_dir(self) -> Path:
        return Path(str(self.settings.value(SESSIONS_DIR_KEY, Path.home() / APP / "sessions")))

    def show_probe_panel(self) -> ProbePanel:
        self.probe_panel.describe_model()
        present(self.probe_panel)
        return self.probe_panel

    def show_transport_editor(self) -> TransportEditor:
        present(self.transport_editor)
        return self.transport_editor

    def start_recording(self) -> None:
        if self.runner.running():
            return
        out = fresh_path(self.sessions_dir(), slug(self.record_panel.prompt.text().strip()), ".h5")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.runner.start(self.record_panel.params(out))

    def _recording_started(self) -> None:
        self.live.start(self.runner.params.out)
        self.record_panel.set_running(True, f"Recording to {self.runner.params.out.name} (the model loads first)…")

    def _live_opened(self, data: SessionData) -> None:
        """The recording's file, listed and shown at its strongest cell at the newest step, which the view follows."""
        self.session_list.add(data)
        start = data.strongest()
        if start is not None:
            self.selection.set(stream="image", **{**start, "step": data.steps_done - 1})

    def _live_grew(self, data: SessionData) -> None:
        self.session_list.refresh(data)
        if self.current() is data:
            following = self.selection.step >= self.view.step.maximum()  # at the newest step before this one
            self.view.refresh()
            if following:
                self.selection.set(step=data.steps_done - 1)

    def cancel_recording(self) -> None:
        waiting = self.runner.waiting()
        self.runner.cancel()
        if not waiting:
            self.record_panel.status.setText("Cancelling at the next block…")

    def _recorded(self, path: Path) -> None:
        self.live.stop()
        self.record_panel.set_running(False, f"Recorded {path.name}")
        if self._closing:
            self._remember(path)
        else:
            self.open_path(path)

    def _record_failed(self, message: str) -> None:
        """The steps written before the failure stay readable: a live entry is re-read to show them all."""
        live = self.live.stop()
        self.record_panel.set_running(False, "Failed.")
        if live is not None and not self._closing:
            self.open_path(live.path)
        self.show_error(f"Recording failed: {message}")

    def _record_cancelled(self, path: Path) -> None:
        """Finished steps are on disk: keep the partial session (listed and in the recent files)."""
        self.live.stop()
        self.record_panel.set_running(False, "Cancelled.")
        if not path.is_file():
            return
        if self._closing:
            self._remember(path)
        else:
            self.open_path(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Withdraw waiting jobs, cancel the running one and wait for it, so its file is closed cleanly and its
        steps are kept."""
        self._closing = True
        for waiting in list(self.jobs.waiting):
            waiting.cancel()
        if self.runner.running():
            self.statusBar().showMessage("Cancelling the recording…")
            self.runner.cancel()
            self.runner.wait()
        for window in [*self.compare_windows, *self.summary_windows, self.probe_panel, self.transport_editor]:
            window.close()
        for data in self.session_list.sessions():
            data.close()
        save_window(self.settings, self, self.splitters())
        self.record_panel.remember(self.settings)
        self.view.remember(self.settings)
        self.settings.sync()
        super().closeEvent(event)
