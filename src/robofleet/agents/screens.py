"""Pictures of an X display: a grab (mss) encoded as PNG, JPEG or WebP (Pillow), scaled down if asked; the small
frames a recording keeps; a recording as an animated WebP.

A grab costs about a millisecond and encoding it ten or more, so every picture has an etag: a digest of the raw
pixels and of the arguments that shape the picture. A caller that has the picture of that etag already gets
`unchanged` and nothing is encoded: a live view of a still screen costs a grab and a hash per frame.

The default mss backend (XCB, with shared memory) is tried first; a server it cannot read (TigerVNC's Xvnc says
"visual not found") is grabbed through the Xlib backend.

A frozen X server would hold a grab for ever (neither backend has a timeout), and with it whoever asked: a
command's thread, the watchdog, the kill of a run. So every grab runs in a thread of its own and is given up after
its deadline (ScreenError); the thread is left to end when the server answers or goes away. At most MAX_HANGING
such threads are left at once: beyond that a grab is refused at once, so a server that stays frozen costs a few
threads, not one per attempt.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import mss
from mss.exception import ScreenShotError
from PIL import Image

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
QUALITY = 80
FRAME_QUALITY = 60
PNG_COMPRESSION = 1  # a live view wants the picture now more than a smaller one: level 6 takes ten times longer
GRAB_SECONDS = 2.0  # a grab takes milliseconds; one that takes this long is stuck on a frozen server
MAX_HANGING = 8
EVIDENCE_QUALITY = 80
EVIDENCE_WIDTH = 1920


class ScreenError(Exception):
    """The display could not be grabbed (it went away, or refuses this agent)."""


@dataclass(frozen=True)
class Grab:
    width: int
    height: int
    bgra: bytes  # 4 bytes a pixel, as X gives them

    def image(self) -> Image.Image:
        return Image.frombuffer("RGB", (self.width, self.height), self.bgra, "raw", "BGRX", 0, 1)


class Shot(TypedDict):
    etag: str
    unchanged: bool
    content_type: str
    data: NotRequired[str]  # base64; absent when unchanged
    width: int
    height: int
    screen_width: int
    screen_height: int


@dataclass(frozen=True)
class Shape:
    """How a picture is asked for; ValueError from `from_args` says what is wrong."""

    format: str = "png"
    quality: int = QUALITY
    scale: float | None = None
    max_width: int | None = None

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> Shape:
        image_format = str(args.get("format") or "png").lower()
        if image_format == "jpg":
            image_format = "jpeg"
        if image_format not in CONTENT_TYPES:
            raise ValueError(f"format is png, jpeg or webp, not {image_format[:20]!r}")
        quality = args.get("quality")
        quality = QUALITY if quality is None else quality
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
            raise ValueError(f"quality is a whole number in 1..95, not {quality!r}")
        scale = args.get("scale")
        if scale is not None:
            if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 1:
                raise ValueError(f"scale is a number in (0, 1], not {scale!r}")
            scale = float(scale)
        max_width = args.get("max_width")
        if max_width is not None and (isinstance(max_width, bool) or not isinstance(max_width, int) or max_width < 1):
            raise ValueError(f"max_width is a whole number of pixels, not {max_width!r}")
        return cls(image_format, quality, scale, max_width)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The picture's size for a screen of `width` x `height`: never larger, never below one pixel."""
        factor = self.scale or 1.0
        if self.max_width is not None and width * factor > self.max_width:
            factor = self.max_width / width
        return max(1, round(width * factor)), max(1, round(height * factor))

    def digest(self, grab: Grab) -> str:
        digest = hashlib.blake2b(grab.bgra, digest_size=16)
        digest.update(
            f"|{grab.width}x{grab.height}|{self.format}|{self.quality}|{self.scale}|{self.max_width}".encode()
        )
        return digest.hexdigest()


_hanging: set[threading.Thread] = set()
_hanging_lock = threading.Lock()


def grab(display: str, timeout: float = GRAB_SECONDS) -> Grab:
    """The whole screen of `display`; ScreenError when it cannot be read within `timeout` seconds."""
    with _hanging_lock:
        for thread in [thread for thread in _hanging if not thread.is_alive()]:
            _hanging.discard(thread)
        if len(_hanging) >= MAX_HANGING:
            raise ScreenError(f"cannot grab display {display}: {len(_hanging)} earlier grabs still hang")
    taken: list[Grab] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            taken.append(_grab(display))
        except BaseException as exc:  # handed to the caller
            failed.append(exc)

    thread = threading.Thread(target=work, name=f"grab {display}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        with _hanging_lock:
            _hanging.add(thread)
        raise ScreenError(f"cannot grab display {display}: it did not answer within {timeout:g} s")
    if failed:
        raise failed[0]
    return taken[0]


def _grab(display: str) -> Grab:
    failure: Exception | None = None
    for backend in ("default", "xlib"):
        try:
            with mss.MSS(display=display, backend=backend) as shooter:
                shot = shooter.grab(shooter.monitors[0])
            return Grab(shot.width, shot.height, bytes(shot.bgra))
        except ScreenShotError as exc:
            failure = exc
    raise ScreenError(f"cannot grab display {display}: {failure}")


def screenshot(display: str, shape: Shape, etag: str | None = None) -> Shot:
    """A picture of `display` shaped as asked, or only its etag when that is the one the caller has."""
    taken = grab(display)
    tag = shape.digest(taken)
    width, height = shape.size(taken.width, taken.height)
    shot: Shot = {
        "etag": tag,
        "unchanged": tag == etag,
        "content_type": CONTENT_TYPES[shape.format],
        "width": width,
        "height": height,
        "screen_width": taken.width,
        "screen_height": taken.height,
    }
    if not shot["unchanged"]:
        shot["data"] = base64.b64encode(encode(taken, shape)).decode()
    return shot


def encode(taken: Grab, shape: Shape) -> bytes:
    image = taken.image()
    size = shape.size(taken.width, taken.height)
    if size != image.size:
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    if shape.format == "png":
        image.save(out, "PNG", compress_level=PNG_COMPRESSION)
    elif shape.format == "jpeg":
        image.save(out, "JPEG", quality=shape.quality)
    else:
        image.save(out, "WEBP", quality=shape.quality, method=0)
    return out.getvalue()


def evidence_picture(display: str, timeout: float = GRAB_SECONDS) -> bytes:
    """The screen as evidence keeps it: a JPEG (quality EVIDENCE_QUALITY) at most EVIDENCE_WIDTH wide, a fraction
    of a PNG's bytes in the orchestrator's database."""
    return encode(grab(display, timeout), Shape("jpeg", EVIDENCE_QUALITY, None, EVIDENCE_WIDTH))


def small_frame(display: str, max_width: int, timeout: float = GRAB_SECONDS) -> bytes:
    """One frame of a recording: the screen at most `max_width` wide, as a JPEG (small in memory)."""
    return encode(grab(display, timeout), Shape("jpeg", FRAME_QUALITY, None, max_width))


def animate(frames: list[bytes], frame_seconds: float = 1.0) -> bytes:
    """Frames (any format Pillow reads, all of one size) as an animated WebP that loops."""
    if not frames:
        raise ValueError("no frames to animate")
    images = [Image.open(io.BytesIO(frame)).convert("RGB") for frame in frames]
    out = io.BytesIO()
    images[0].save(
        out,
        "WEBP",
        save_all=True,
        append_images=images[1:],
        duration=round(frame_seconds * 1000),
        loop=0,
        quality=FRAME_QUALITY,
        method=0,
    )
    return out.getvalue()
