"""Videos of episodes: the full 600x400 view a person watches, or the 96x96 observation the agent sees.

`EpisodeRecorder` keeps one episode's frames in either view; `write_video` saves them as MP4 or GIF;
`add_clip` shows them as an animated GIF in TensorBoard's Images tab. (SummaryWriter.add_video writes
the same kind of summary but encodes it with moviepy, which this project does not install.)
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Iterable

import numpy as np

from errors import UserError

VIEWS = ("full", "obs")
OBS_SCALE = 4  # the 96x96 observation, magnified (nearest) so that it is watchable
SUFFIXES = (".mp4", ".gif")


def add_view_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video_view", choices=VIEWS, default="full",
                        help="what --video shows: full = the 600x400 picture CarRacing renders for people (its "
                             "rgb_array view, without skid marks; ~1 ms a frame, only for the recorded episode); "
                             "obs = the 96x96 observation the agent sees, magnified")


def check_video_path(path: str) -> None:
    if Path(path).suffix.lower() not in SUFFIXES:
        raise UserError(f"--video {path}: use a .mp4 or .gif file name")


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour magnification: keeps the pixels the agent sees crisp."""
    return frame.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else frame


def shrink(frame: np.ndarray, factor: int) -> np.ndarray:
    """Area-average downscale by an integer `factor` that divides both sides (600x400: 2, 4, 5, 8, ...)."""
    if factor == 1:
        return frame
    height, width, channels = frame.shape
    blocks = frame.reshape(height // factor, factor, width // factor, factor, channels)
    return (blocks.mean(axis=(1, 3)) + 0.5).astype(np.uint8)


class EpisodeRecorder:
    """The frames of one episode in `view` ('full' or 'obs'), shrunk by `shrink_by`, at most `max_frames`."""

    def __init__(self, view: str = "full", max_frames: int | None = None, shrink_by: int = 1):
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        self.view, self.max_frames, self.shrink_by = view, max_frames, shrink_by
        self.frames: list[np.ndarray] = []

    @property
    def full(self) -> bool:
        return self.max_frames is not None and len(self.frames) >= self.max_frames

    def capture(self, vec_env, index: int, observation: np.ndarray) -> None:
        """Record environment `index` of `vec_env` at its current frame (`observation`: its raw 96x96 frame)."""
        if self.full:
            return
        if self.view == "full":
            # Rendered where the car lives, in the env's process; every env of the vector renders (about 1 ms
            # each), but only while this episode is being recorded.
            picture = vec_env.call("render_full_view")[index]
        else:
            picture = upscale(observation, OBS_SCALE)
        self.frames.append(shrink(picture, self.shrink_by))


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Frames to an H.264 MP4 or a looping GIF, by the file's extension; returns how many were written."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        writer = imageio.get_writer(path, mode="I", duration=1000 / fps, loop=0)
    else:
        # macro_block_size=1: keep the size (every size made here is even, as H.264 needs) instead of
        # stretching it to a multiple of 16.
        writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=1)
    count = 0
    with writer:
        for frame in frames:
            writer.append_data(frame)
            count += 1
    return count


def gif_bytes(frames: list[np.ndarray], fps: float) -> bytes:
    import imageio.v2 as imageio

    buffer = io.BytesIO()
    imageio.mimsave(buffer, frames, format="GIF", duration=1000 / fps, loop=0)
    return buffer.getvalue()


def add_clip(writer, tag: str, frames: list[np.ndarray], fps: float, step: int) -> None:
    """An animated GIF in TensorBoard's Images tab (which plays GIFs) under `tag` at `step`."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    height, width = frames[0].shape[:2]
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif_bytes(frames, fps))
    # The file writer is where add_video itself writes its encoded summary.
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
