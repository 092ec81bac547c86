"""Read and write video and GIF files, probe their metadata."""

from vidaction.io.video import (
    VIDEO_EXTENSIONS,
    VideoInfo,
    VideoReader,
    VideoReadError,
    probe,
    read_frames,
    verify,
)
from vidaction.io.writer import write_gif, write_video

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "VideoReadError",
    "VideoReader",
    "probe",
    "read_frames",
    "verify",
    "write_gif",
    "write_video",
]
