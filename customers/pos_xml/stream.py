"""Streaming a POS export: the checks on the file as a whole, and the public entry points.

lxml.etree.iterparse reads the file in 32 KB chunks; each <purchase> element is handed over once
complete and freed straight after, so memory stays flat whatever the file's size.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from typing import BinaryIO

from django.utils.translation import gettext as _
from lxml import etree

from .purchases import PurchaseParser
from .records import PosFileError, PosFileScan, PosHeader, PosPurchase, PosRejection
from .values import MAX_STORE_CODE, parse_aware_datetime, show

PosSource = str | PathLike[str] | BinaryIO

FORMAT_VERSION = "1"
# No real purchase comes near this; it bounds memory when a file is one gigantic element.
MAX_PURCHASE_BYTES = 4 * 1024 * 1024
# lxml's defaults would resolve internal entities; everything that reaches outside is off too.
# UTF-8 is forced (the spec says so), which also keeps the raw-byte DOCTYPE check complete: no
# other encoding can hide one.
PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "encoding": "utf-8",
}
_DOCTYPE = b"<!DOCTYPE"


def _refuse_dtd() -> PosFileError:
    return PosFileError(_("The file contains a DTD (<!DOCTYPE …>); DTDs and entities are refused."))


class _Reader:
    """The file object lxml reads from: hashes and counts the bytes, refuses a DTD before libxml2
    sees it, and refuses a file that goes on too long without completing a purchase."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._tail = b""
        self.digest = hashlib.sha256()
        self.size = 0
        self.mark = 0  # self.size when the last purchase was completed
        self.purchases = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        if isinstance(data, str):
            raise TypeError("POS files must be opened in binary mode.")
        if data:
            # A DOCTYPE is only legal before the root, but refusing it anywhere costs nothing
            # and is simpler than tracking where the prolog ends. _tail catches one split in two.
            if _DOCTYPE in data or _DOCTYPE in self._tail + data[:8]:
                raise _refuse_dtd()
            self._tail = data[-8:]
            self.digest.update(data)
            self.size += len(data)
            if self.size - self.mark > MAX_PURCHASE_BYTES:
                raise PosFileError(
                    _(
                        "More than %(limit)d MB without a complete <purchase> after purchase"
                        " %(n)d: not a POS export, or a purchase far too large."
                    )
                    % {"limit": MAX_PURCHASE_BYTES // 2**20, "n": self.purchases}
                )
        return data


def _header(root: etree._Element) -> PosHeader:
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _refuse_dtd()
    if root.tag != "export":
        raise PosFileError(
            _("The root element is <%(tag)s>, not <export>: this is not a POS export.")
            % {"tag": show(str(root.tag))}
        )
    version = (root.get("version") or "").strip()
    if not version:
        raise PosFileError(_("<export> has no version attribute."))
    if version != FORMAT_VERSION:
        raise PosFileError(
            _("Format version “%(version)s” is not supported; version %(supported)s is.")
            % {"version": show(version), "supported": FORMAT_VERSION}
        )
    store_code = (root.get("store") or "").strip()
    if not store_code:
        raise PosFileError(_("<export> has no store attribute."))
    if len(store_code) > MAX_STORE_CODE:
        raise PosFileError(
            _("Store code “%(value)s” is longer than %(limit)d characters.")
            % {"value": show(store_code), "limit": MAX_STORE_CODE}
        )
    raw_generated = (root.get("generated") or "").strip()
    if not raw_generated:
        raise PosFileError(_("<export> has no generated attribute."))
    try:
        generated = parse_aware_datetime(raw_generated)
    except ValueError as exc:
        raise PosFileError(_("<export generated>: %(reason)s") % {"reason": exc}) from None
    return PosHeader(store_code, generated, version)


def _syntax_error(
    exc: etree.XMLSyntaxError, context: etree.iterparse, reader: _Reader
) -> PosFileError:
    if reader.size == 0:
        return PosFileError(_("The file is empty."))
    # With resolve_entities=False lxml sometimes raises a bare "no element found (line 0)"; the
    # parser's own log holds the real first error and where it is.
    errors = context.error_log.filter_from_errors()
    message, (line, column) = exc.msg, exc.position
    if errors:
        message, line, column = errors[0].message, errors[0].line, errors[0].column
    return PosFileError(
        _("The file is not well-formed UTF-8 XML: %(error)s (line %(line)d, column %(column)d).")
        % {"error": message, "line": line, "column": column}
    )


@contextmanager
def _opened(source: PosSource, *, rewind: bool) -> Iterator[BinaryIO]:
    if isinstance(source, str | PathLike):
        with open(source, "rb") as file:
            yield file
        return
    start = source.tell() if rewind and source.seekable() else None
    try:
        yield source
    finally:
        if start is not None:
            source.seek(start)


class _PurchaseStream:
    """One pass over a file: the <purchase> elements, the header, and the bytes read."""

    def __init__(self, file: BinaryIO) -> None:
        self.reader = _Reader(file)
        self.header: PosHeader | None = None

    def elements(self) -> Iterator[etree._Element]:
        """Each <purchase> child of <export> in document order, freed once the consumer moves on.

        The header is checked before the first purchase is yielded. Raises PosFileError when the
        file turns out broken, possibly after yielding some purchases.
        """
        reader = self.reader
        root = None  # held, so that getparent() keeps returning this very proxy: `is` suffices
        context = etree.iterparse(
            reader, events=("end",), tag=("export", "purchase"), **PARSER_OPTIONS
        )
        try:
            for _event, element in context:
                parent = element.getparent()
                if root is None or parent is not root:
                    if parent is None:  # </export>, or a root of the wrong name
                        if self.header is None:
                            self.header = _header(element)
                        continue
                    if parent.getparent() is not None:
                        raise PosFileError(
                            _("Line %(line)d: <purchase> must be a direct child of <export>.")
                            % {"line": element.sourceline or 0}
                        )
                    self.header = _header(parent)
                    root = parent
                reader.purchases += 1
                reader.mark = reader.size
                yield element
                # The usual iterparse recipe: free this purchase and whatever came before it,
                # but leave the element itself in place (lxml still attaches its tail text).
                element.clear()
                while element.getprevious() is not None:
                    del parent[0]
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc, context, reader) from None
        if self.header is None:  # neither <purchase> nor <export>: a root of another name
            self.header = _header(context.root)


def read_pos_header(source: PosSource) -> PosHeader:
    """The <export> attributes, checked; reads only as far as the root element's start tag.

    A seekable file object is left at the position it had.
    """
    with _opened(source, rewind=True) as file:
        reader = _Reader(file)
        context = etree.iterparse(reader, events=("start",), **PARSER_OPTIONS)
        try:
            for _event, root in context:
                return _header(root)
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc, context, reader) from None
    raise PosFileError(_("The file is empty."))  # pragma: no cover - libxml2 raises first


def scan_pos_file(source: PosSource) -> PosFileScan:
    """Check the whole file is well-formed and a POS export, or raise PosFileError; cheap.

    Purchases are counted, not validated (a bad purchase is a rejection, not a bad file). A
    seekable file object is left at the position it had, ready for iter_pos_purchases.
    """
    with _opened(source, rewind=True) as file:
        stream = _PurchaseStream(file)
        for _element in stream.elements():
            pass
    reader = stream.reader
    assert stream.header is not None  # a complete pass either checked it or raised
    return PosFileScan(stream.header, reader.digest.hexdigest(), reader.purchases, reader.size)


def iter_pos_purchases(
    source: PosSource, *, share: tuple[int, int] = (0, 1)
) -> Iterator[PosPurchase | PosRejection]:
    """Exactly one PosPurchase or PosRejection per <purchase> element, in document order.

    Streaming, in memory flat in the file size. A rejection carries the first problem found in
    its purchase. Purchase ids are not deduplicated: when an id repeats in a file, both are
    yielded in order, and the later one is the one that counts (the upsert treats it as an
    update). Raises PosFileError for a broken file, possibly after yielding purchases: run
    scan_pos_file first. A file object is read from its current position.

    `share=(k, n)` yields only the purchases at positions p with (p - 1) % n == k (the whole
    file is still read and checked): n processes, one share each, parse a file together.
    """
    part, parts = share
    with _opened(source, rewind=False) as file:
        stream = _PurchaseStream(file)
        parser = PurchaseParser()
        reader = stream.reader
        for element in stream.elements():
            position = reader.purchases
            if (position - 1) % parts == part:
                yield parser.parse(element, position)
