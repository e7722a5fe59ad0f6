"""Text of a PDF printed by Chromium (Skia), page by page, read with the standard library only (no
PDF package is in the lock): each page's content streams decoded through its fonts' ToUnicode
maps. Enough for Skia's uncompressed object layout with 2-byte glyph codes; kerning may split
words, so compare with spaces removed."""

from __future__ import annotations

import re
import zlib


def _stream(obj: bytes) -> bytes:
    m = re.search(rb"stream\r?\n", obj)
    n = re.search(rb"/Length\s+(\d+)", obj)
    if not m or not n:
        return b""
    data = obj[m.end() : m.end() + int(n.group(1))]
    return zlib.decompress(data) if b"/FlateDecode" in obj[: m.start()] else data


def _cmap(data: bytes) -> dict[int, str]:
    out = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            base = int(dst, 16)
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = chr(base + i)
    return out


def pdf_pages_text(pdf: bytes) -> list[str]:
    """The text of every page of ``pdf`` in page order (whitespace runs collapsed to one space)."""
    objs = {int(m.group(1)): m.group(2) for m in re.finditer(rb"(\d+) 0 obj\s*(.*?)endobj", pdf, re.S)}

    def ref(obj, key):
        m = re.search(rb"/" + key + rb"\s+(\d+) 0 R", obj)
        return int(m.group(1)) if m else None

    # page order: the /Kids of the page tree, depth first
    root = next(n for n, o in objs.items() if re.search(rb"/Type\s*/Pages\b", o) and b"/Parent" not in o)
    order = []

    def walk(n):
        o = objs[n]
        if re.search(rb"/Type\s*/Pages\b", o):
            for k in re.findall(rb"(\d+) 0 R", re.search(rb"/Kids\s*\[(.*?)\]", o, re.S).group(1)):
                walk(int(k))
        else:
            order.append(n)

    walk(root)
    cmaps = {}
    texts = []
    for n in order:
        page = objs[n]
        fonts_dict = re.search(rb"/Font\s*<<(.*?)>>", page, re.S)
        fonts = {}
        for name, num in re.findall(rb"/(\w+)\s+(\d+) 0 R", fonts_dict.group(1) if fonts_dict else b""):
            fnum = int(num)
            if fnum not in cmaps:
                tu = ref(objs[fnum], b"ToUnicode")
                cmaps[fnum] = _cmap(_stream(objs[tu])) if tu else {}
            fonts[name] = cmaps[fnum]
        content = b"".join(
            _stream(objs[int(c)])
            for c in re.findall(rb"(\d+) 0 R", re.search(rb"/Contents\s*(\[.*?\]|\d+ 0 R)", page, re.S).group(1))
        )
        cur, out = {}, []
        for tok in re.finditer(rb"/(\w+)\s+[\d.]+\s+Tf|<([0-9A-Fa-f]*)>|(T\*|Td|TD|Tm|ET)\b", content):
            if tok.group(1):
                cur = fonts.get(tok.group(1), {})
            elif tok.group(2) is not None:
                h = tok.group(2).decode()
                out.append("".join(cur.get(int(h[i : i + 4], 16), "") for i in range(0, len(h), 4)))
            else:
                out.append(" ")
        texts.append(re.sub(r"\s+", " ", "".join(out)))
    return texts
