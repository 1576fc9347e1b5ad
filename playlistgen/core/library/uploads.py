"""Upload staging: a sanitised final name, a hidden temporary file in the library folder that the
upload streams into, and publication under the final name without ever replacing a file.

The temporary file is ``.upload-XXXX.part`` (hidden and temporary, so the watcher ignores it);
only a complete upload is linked/renamed to its final name. HTTP parsing stays in the API."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import IO

from werkzeug.utils import secure_filename

from ...errors import BadRequestError
from .paths import safe_filename

log = logging.getLogger(__name__)
FIELD = "file"


def upload_name(raw: str | None, extensions: list[str]) -> str:
    """The sanitised final name, or BadRequestError saying what is wrong with ``raw``."""
    if not raw or not raw.strip():
        raise BadRequestError("the upload has no file name", hint=f"send the file in the multipart field '{FIELD}'")
    name = unicodedata.normalize("NFC", raw.strip())
    # "..\\x.mp3" reaches us as "..x.mp3" (the header unquoting eats backslashes): refuse that too
    if "/" in name or "\\" in name or name.startswith("..") or "\x00" in name:
        raise BadRequestError(f"file name {raw!r} contains a path", hint="send a plain file name such as 'song.mp3'")
    ext = os.path.splitext(name)[1]
    if ext.lower() not in extensions:
        raise BadRequestError(f"file type '{ext or name}' is not accepted",
                              hint="allowed: " + " ".join(extensions) + " (library.extensions)")
    stem = safe_filename(os.path.splitext(name)[0], max_bytes=200 - len(ext.encode()))
    if stem == "playlist" or not stem.strip("_ "):  # nothing usable left: werkzeug's ASCII fallback
        stem = os.path.splitext(secure_filename(name))[0] or "upload"
    return stem + ext


def _publish(tmp: str, folder: Path, name: str) -> Path:
    """Give the finished temporary file its name without ever replacing an existing file."""
    stem, ext = os.path.splitext(name)
    for n in range(1000):
        final = folder / (name if n == 0 else f"{stem} ({n}){ext}")
        try:
            os.link(tmp, final)  # fails if final exists: no clobbering, no race
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            if final.exists():  # a filesystem without hard links
                continue
            os.rename(tmp, final)
            return final
        os.unlink(tmp)
        return final
    raise BadRequestError(f"too many files named like '{name}' already", hint="rename the file")


class UploadStaging:
    """One upload into ``folder``: :meth:`open` gives the stream to write to (refusing a bad name
    before a byte is written), :meth:`publish` checks the result and gives it its final name,
    :meth:`cleanup` removes whatever is left (always call it)."""

    def __init__(self, folder: Path, extensions: list[str], limit_bytes: int) -> None:
        self.folder = folder
        self.extensions = extensions
        self.limit_bytes = limit_bytes
        self._tmp: str | None = None
        self._stream: IO[bytes] | None = None

    def open(self, filename: str | None) -> IO[bytes]:
        upload_name(filename, self.extensions)  # refuse before writing a byte
        if self._tmp is not None:
            raise BadRequestError("send one file per upload")
        fd, self._tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=self.folder)
        self._stream = os.fdopen(fd, "wb+")
        return self._stream

    @property
    def started(self) -> bool:
        return self._tmp is not None

    def publish(self, filename: str | None) -> tuple[Path, int]:
        """Flush, check size (``OverflowError`` past the limit) and publish; (final path, size)."""
        name = upload_name(filename, self.extensions)
        assert self._stream is not None and self._tmp is not None
        self._stream.flush()
        os.fsync(self._stream.fileno())
        size = os.fstat(self._stream.fileno()).st_size
        self._stream.close()
        if size > self.limit_bytes:
            raise OverflowError(size)
        if size == 0:
            raise BadRequestError("the uploaded file is empty", hint="check the file you sent")
        os.chmod(self._tmp, 0o644)  # mkstemp makes 0600; media servers must read it
        final = _publish(self._tmp, self.folder, name)
        log.info("upload stored: %s (%d bytes)", final, size)
        return final, size

    def cleanup(self) -> None:
        if self._stream is not None:
            self._stream.close()
        if self._tmp is not None:  # a published file was linked/renamed away already
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
