"""Subsonic responses in the format the client asked for: ``f=json`` (and ``jsonp``), or XML when
``f`` is absent or ``xml``. The body is built once as a dict; XML follows the Subsonic schema's
conventions: scalars are attributes, objects are child elements, a list of objects is one element
per item under the key's name, and a list of scalars is one text element per value."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from flask import Response

from ..json_provider import dumps_finite

XMLNS = "http://subsonic.org/restapi"
_CALLBACK_RE = re.compile(r"^[A-Za-z_$][\w$.]{0,99}$")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, body: dict) -> None:
    for key, value in body.items():
        if value is None:
            continue
        if isinstance(value, dict):
            _fill(ET.SubElement(element, key), value)
        elif isinstance(value, list):
            for item in value:
                child = ET.SubElement(element, key)
                if isinstance(item, dict):
                    _fill(child, item)
                else:
                    child.text = _scalar(item)
        else:
            element.set(key, _scalar(value))


def to_xml(body: dict) -> bytes:
    root = ET.Element("subsonic-response", {"xmlns": XMLNS})
    _fill(root, body)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def render(body: dict, fmt: str | None, callback: str | None = None, status: int = 200) -> Response:
    """A ``subsonic-response`` in the client's format."""
    fmt = (fmt or "xml").lower()
    if fmt == "jsonp" and callback and _CALLBACK_RE.match(callback):
        text = f"{callback}({dumps_finite({'subsonic-response': body}, ensure_ascii=False)});"
        return Response(text, status=status, mimetype="text/javascript")
    if fmt in ("json", "jsonp"):
        return Response(dumps_finite({"subsonic-response": body}, ensure_ascii=False), status=status,
                        mimetype="application/json")
    return Response(to_xml(body), status=status, content_type="text/xml; charset=utf-8")


def ok_body(server: dict, **content: Any) -> dict:
    """status ok with the server's version/type (we add an OpenSubsonic extension, so openSubsonic)."""
    return {"status": "ok", "version": server.get("version") or "1.16.1", "type": server.get("type") or "playlistgen",
            "serverVersion": server.get("serverVersion") or "", "openSubsonic": True, **content}


def error_body(server: dict, code: int, message: str) -> dict:
    body = ok_body(server)
    body["status"] = "failed"
    body["error"] = {"code": code, "message": message}
    return body


def parse_status(data: bytes, content_type: str) -> dict:
    """status/version/type/serverVersion/error of a server's subsonic-response (JSON or XML);
    {} when the body is neither."""
    text = data.decode("utf-8", "replace").strip()
    if "json" in content_type or text.startswith("{"):
        try:
            body = json.loads(text).get("subsonic-response")
        except (ValueError, AttributeError):
            return {}
        return body if isinstance(body, dict) else {}
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return {}
    if not root.tag.endswith("subsonic-response"):
        return {}
    out: dict[str, Any] = dict(root.attrib)
    for child in root:
        if child.tag.endswith("error"):
            code = child.get("code")
            out["error"] = {"code": int(code) if code and code.isdigit() else code, "message": child.get("message")}
    return out
