"""POST /api/v1/library/upload: a multipart upload (field ``file``) into the first library folder.

The multipart parser streams the file part in chunks straight into a hidden temporary file in the
library folder (``.upload-XXXX.part``: hidden and temporary, so the watcher ignores it); only a
complete upload is renamed to its final name, without replacing an existing file. The size limit
is ``api.max_upload_mb`` (413 at once for a larger Content-Length, and as soon as a chunked body
passes it; waitress enforces the same bound before the app runs), a full disk is 507 and a folder
the daemon may not write is 403 (api/errors.py), the extension must be in ``library.extensions``, a name with a
path in it is refused, and the stored name is sanitised (unicode letters kept)."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import IO

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.utils import secure_filename

from ..core.playlists.export import safe_filename
from ..errors import BadRequestError
from .server import UPLOAD_OVERHEAD

log = logging.getLogger(__name__)
bp = Blueprint("upload", __name__, url_prefix="/api/v1")
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


@bp.post("/library/upload")
def upload():  # type: ignore[no-untyped-def]
    services = current_app.extensions["playlistgen"]
    settings = services.settings
    folder = Path(settings.library.paths[0]).resolve()
    if not folder.is_dir():
        raise BadRequestError(f"library folder '{folder}' does not exist", hint="create it or fix library.paths")
    extensions = [e.lower() for e in settings.library.extensions]
    limit = settings.api.max_upload_mb * 1024 * 1024
    too_large = RequestEntityTooLarge(f"the upload is larger than {settings.api.max_upload_mb} MB")
    declared = request.content_length
    if declared is not None and declared > limit + UPLOAD_OVERHEAD:  # before reading a byte of the body
        raise too_large
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise BadRequestError("the upload must be multipart/form-data",
                              hint=f"e.g. curl -F '{FIELD}=@song.mp3' http://host:8500/api/v1/library/upload")
    temporaries: list[str] = []
    streams: list[IO[bytes]] = []

    def stream_factory(total_content_length: int | None, content_type: str | None, filename: str | None,
                       content_length: int | None = None) -> IO[bytes]:
        upload_name(filename, extensions)  # refuse before writing a byte
        if temporaries:
            raise BadRequestError("send one file per upload")
        fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=folder)
        temporaries.append(tmp)
        streams.append(os.fdopen(fd, "wb+"))
        return streams[-1]

    # max_form_memory_size also bounds werkzeug's parse buffer (64 KiB reads + carry-over): keep it well above
    # a chunked body (no Content-Length) is cut off as soon as it passes the limit
    parser = FormDataParser(stream_factory=stream_factory, max_form_memory_size=1024 * 1024,
                            max_content_length=limit + UPLOAD_OVERHEAD, silent=False, max_form_parts=16)
    try:
        try:
            _, _, files = parser.parse_from_environ(request.environ)
        except ValueError as exc:  # malformed multipart body
            raise BadRequestError(f"cannot read the multipart body: {exc}") from None
        stored = files.get(FIELD)
        if stored is None or not temporaries:
            raise BadRequestError(f"no file in the multipart field '{FIELD}'",
                                  hint=f"curl -F '{FIELD}=@song.mp3' .../api/v1/library/upload")
        name = upload_name(stored.filename, extensions)
        stream = streams[0]
        stream.flush()
        os.fsync(stream.fileno())
        size = os.fstat(stream.fileno()).st_size
        stream.close()
        if size > limit:
            raise too_large
        if size == 0:
            raise BadRequestError("the uploaded file is empty", hint="check the file you sent")
        os.chmod(temporaries[0], 0o644)  # mkstemp makes 0600; media servers must read it
        final = _publish(temporaries[0], folder, name)
    finally:
        for stream in streams:
            stream.close()
        for tmp in temporaries:  # published files were linked/renamed away already
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    log.info("upload stored: %s (%d bytes)", final, size)
    daemon = services.daemon
    if daemon is not None and getattr(daemon.library_service, "watcher", None) is None:
        daemon.library_service.request_scan("upload")  # no watcher: reconcile to pick it up
    return jsonify({"path": str(final), "name": final.name, "size": size,
                    "message": "stored; it will be analysed shortly"}), 201
