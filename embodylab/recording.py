"""Recording what an episode looked like: videos, contact sheets and printed tables.

`EpisodeRecording` writes several episodes into one video (each ending on its last frame held still) and
a PNG contact sheet beside it, one row of frames per episode; `render`, `demo`, `eval --video` and the
benchmarks use it. `print_table` is the one table printer of the commands and benchmarks.

Frames are `[H, W, 3]` uint8 arrays, as `env.render()` returns them with `render_mode="rgb_array"`.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".gif")
CONTACT_SHEET_COLUMNS = 6
CONTACT_SHEET_MAX_ROWS = 6
HOLD_LAST_FRAME_S = 0.5
"""seconds the last frame of each episode is held in a video, so that its outcome is visible"""


def contact_sheet_path(video: Path) -> Path:
    """Where the contact sheet of `video` goes: `out.mp4` -> `out_contact.png`."""
    return video.with_name(f"{video.stem}_contact.png")


def video_writer(path: Path, fps: int):
    """An imageio writer for `path`: an animated GIF for `.gif`, else H.264 through ffmpeg."""
    if path.suffix == ".gif":
        return imageio.get_writer(path, mode="I", duration=1000.0 / fps, loop=0)
    # macro_block_size=2: libx264's yuv420p needs even sides only; the default 16 would rescale 8..1024.
    return imageio.get_writer(path, fps=fps, macro_block_size=2, ffmpeg_log_level="error")


def write_video(path: str | Path, frames: list[np.ndarray], fps: int) -> Path:
    """Writes `frames` to the video `path` (its folder is created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with video_writer(path, fps) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def check_video_request(out: Path, episodes: int) -> None:
    """Rejects an output path without a video suffix and a non-positive episode count.

    Raises:
        ValueError: the suffix is not one of `VIDEO_SUFFIXES`, or `episodes < 1`."""
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(
            f"output {str(out)!r} has suffix {out.suffix!r}; valid suffixes: {', '.join(VIDEO_SUFFIXES)}"
        )
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes}")


class EpisodeRecording:
    """One video of several episodes, each ending on its last frame held still, and their contact sheet:
    one row of frames per episode, at most `CONTACT_SHEET_MAX_ROWS` rows spread over the episodes."""

    def __init__(self, out: Path, fps: int):
        self.out, self.frames = out, 0
        self._hold = round(HOLD_LAST_FRAME_S * fps)
        self._sheet_rows: list[list[np.ndarray]] = []
        out.parent.mkdir(parents=True, exist_ok=True)
        self._writer = video_writer(out, fps)

    def __enter__(self) -> EpisodeRecording:
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    def add_episode(self, frames: list[np.ndarray]) -> None:
        for frame in frames + [frames[-1]] * self._hold:
            self._writer.append_data(frame)
        self.frames += len(frames) + self._hold
        picks = np.linspace(0, len(frames) - 1, CONTACT_SHEET_COLUMNS).round().astype(int)
        self._sheet_rows.append([frames[i] for i in picks])

    def write_contact_sheet(self) -> Path:
        rows = self._sheet_rows
        keep = np.linspace(0, len(rows) - 1, min(len(rows), CONTACT_SHEET_MAX_ROWS)).round().astype(int)
        sheet = contact_sheet_path(self.out)
        imageio.imwrite(sheet, contact_sheet([rows[i] for i in keep]))
        return sheet


def contact_sheet(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tiles `rows` of equally sized [H, W, 3] frames into one uint8 image with white gaps."""
    h, w, _ = rows[0][0].shape
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    sheet = np.full((n_rows * (h + gap) + gap, n_cols * (w + gap) + gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            y, x = gap + r * (h + gap), gap + c * (w + gap)
            sheet[y : y + h, x : x + w] = frame
    return sheet


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table on stdout: rich's when rich is installed, else aligned plain text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(c)) for c in col) for col in zip(columns, *rows, strict=True)]
        print(title)
        for line in [columns, ["-" * w for w in widths], *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        return
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        # The first column holds ids: never wrapped, so that they can be copied and grepped.
        table.add_column(column, no_wrap=i == 0, overflow="fold")
    for row in rows:
        table.add_row(*map(str, row))
    console = Console()
    if not console.is_terminal:  # piped or captured: rich would assume 80 columns and wrap every cell
        console.width = 200
    console.print(table)
