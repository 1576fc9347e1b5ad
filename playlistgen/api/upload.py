"""POST /api/v1/library/upload: a multipart upload (field ``file``) into the first library folder.

The multipart parser streams the file part in chunks straight into the staging of
core/library/uploads.py (a hidden temporary file in the library folder, published under its final name
only when complete, never replacing an existing file). The size limit
is ``api.max_upload_mb`` (413 at once for a larger Content-Length, and as soon as a chunked body
passes it; waitress enforces the same bound before the app runs), a full disk is 507 and a folder
the daemon may not write is 403 (api/errors.py), the extension must be in ``library.extensions``, a name with a
path in it is refused, and the stored name is sanitised (unicode letters kept)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from ..core.library.uploads import FIELD, UploadStaging
from ..errors import BadRequestError
from .context import current_services
from .server import UPLOAD_OVERHEAD

log = logging.getLogger(__name__)
bp = Blueprint("upload", __name__, url_prefix="/api/v1")
FORM_PARTS = 16              # parts of the multipart body (one is the file)
FORM_MEMORY = 1024 * 1024    # bytes of a part that is not a file (also bounds werkzeug's parse buffer)


@bp.post("/library/upload")
def upload():  # type: ignore[no-untyped-def]
    services = current_services()
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
    staging = UploadStaging(folder, extensions, limit)

    def stream_factory(total_content_length: int | None, content_type: str | None, filename: str | None,
                       content_length: int | None = None) -> IO[bytes]:
        return staging.open(filename)

    # max_form_memory_size also bounds werkzeug's parse buffer (64 KiB reads + carry-over): keep it well above
    # a chunked body (no Content-Length) is cut off as soon as it passes the limit
    parser = FormDataParser(stream_factory=stream_factory, max_form_memory_size=FORM_MEMORY,
                            max_content_length=limit + UPLOAD_OVERHEAD, silent=False, max_form_parts=FORM_PARTS)
    try:
        try:
            _, _, files = parser.parse_from_environ(request.environ)
        except ValueError as exc:  # malformed multipart body
            raise BadRequestError(f"cannot read the multipart body: {exc}") from None
        except RequestEntityTooLarge:
            if declared is None or declared > limit + UPLOAD_OVERHEAD:
                raise too_large from None
            # werkzeug says 413 for too many parts or a big text field too: the body itself is small
            raise BadRequestError(f"the multipart body has more than {FORM_PARTS} parts or a form field over "
                                  f"{FORM_MEMORY // 1024} KiB",
                                  hint=f"send one part, the file, in the field '{FIELD}'") from None
        stored = files.get(FIELD)
        if stored is None or not staging.started:
            raise BadRequestError(f"no file in the multipart field '{FIELD}'",
                                  hint=f"curl -F '{FIELD}=@song.mp3' .../api/v1/library/upload")
        try:
            final, size = staging.publish(stored.filename)
        except OverflowError:
            raise too_large from None
    finally:
        staging.cleanup()
    daemon = services.daemon
    if daemon is not None and getattr(daemon.library_service, "watcher", None) is None:
        daemon.library_service.request_scan("upload")  # no watcher: reconcile to pick it up
    return jsonify({"path": str(final), "name": final.name, "size": size,
                    "message": "stored; it will be analysed shortly"}), 201
