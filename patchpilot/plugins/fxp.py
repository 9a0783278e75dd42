"""Giving a plugin a VST2-era ``.fxp`` patch through VST3 state (Surge XT's patch format).

pedalboard loads ``.vstpreset`` files only (its issue #277: an ``.fxp`` cannot be given to
a plugin). Surge XT's own patches are ``.fxp`` files: a VST2 "opaque chunk" wrapper around
Surge's patch data (an XML document and optional wavetables, per the Surge team). A JUCE
plugin's VST3 component state is what its ``getStateInformation`` writes, and for Surge XT
that is the same patch data; so the chunk is put into the component part of the plugin's
``raw_state``, which pedalboard's JUCE host keeps as XML (``VC2!`` + length + ``<VST3PluginState>
<IComponent>`` in JUCE's own base64 ``</IComponent>...``).

Verified here: the ``raw_state`` container and the base64 codec, on ZamComp (a real VST3
hosted by the same code). NOT verified: that Surge XT accepts its ``.fxp`` chunk as
component state (no Surge XT build can be installed on this machine).
"""

from __future__ import annotations

import re
import struct

import numpy as np

from patchpilot.errors import PresetError

#: JUCE's ``MemoryBlock::toBase64Encoding`` alphabet (not RFC 4648's).
_JUCE_ALPHABET = b".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"
_JUCE_INDEX = np.full(256, -1, dtype=np.int16)
_JUCE_INDEX[np.frombuffer(_JUCE_ALPHABET, dtype=np.uint8)] = np.arange(64)
#: ``copyXmlToBinary``'s header: magic and the text's length (little-endian).
_XML_MAGIC = b"VC2!"
_COMPONENT = re.compile(rb"<IComponent>([^<]*)</IComponent>")


def juce_base64_encode(data: bytes) -> bytes:
    """``<size>.<chars>``: the bytes' bits little-endian, six at a time, lowest first."""
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    count = (len(bits) + 5) // 6
    bits = np.concatenate([bits, np.zeros(count * 6 - len(bits), dtype=np.uint8)]).reshape(count, 6)
    values = bits @ (1 << np.arange(6))
    return str(len(data)).encode() + b"." + np.frombuffer(_JUCE_ALPHABET, dtype=np.uint8)[values].tobytes()


def juce_base64_decode(text: bytes) -> bytes:
    size_text, dot, body = text.strip().partition(b".")
    if not dot or not size_text.isdigit():
        raise PresetError("plugin state: not JUCE base64 (no '<size>.' prefix)")
    values = _JUCE_INDEX[np.frombuffer(body, dtype=np.uint8)]
    if (values < 0).any():
        raise PresetError("plugin state: a character outside JUCE's base64 alphabet")
    bits = ((values[:, None] >> np.arange(6)) & 1).astype(np.uint8).ravel()
    size = int(size_text)
    return np.packbits(bits, bitorder="little").tobytes()[:size]


def component_state(raw_state: bytes) -> bytes:
    """The plugin's own (component) state inside pedalboard's ``raw_state``."""
    found = _COMPONENT.search(_xml(raw_state))
    if found is None:
        raise PresetError("plugin state: no <IComponent> part")
    return juce_base64_decode(found.group(1))


def with_component_state(raw_state: bytes, component: bytes) -> bytes:
    """``raw_state`` with its component part replaced (the controller part is kept)."""
    xml = _xml(raw_state)
    if _COMPONENT.search(xml) is None:
        raise PresetError("plugin state: no <IComponent> part")
    encoded = juce_base64_encode(component)
    xml = _COMPONENT.sub(lambda _: b"<IComponent>" + encoded + b"</IComponent>", xml, count=1)
    return _XML_MAGIC + struct.pack("<I", len(xml)) + xml + b"\x00"


def _xml(raw_state: bytes) -> bytes:
    if not raw_state.startswith(_XML_MAGIC) or len(raw_state) < 8:
        raise PresetError("plugin state: not the XML state pedalboard's VST3 host writes")
    (length,) = struct.unpack("<I", raw_state[4:8])
    return raw_state[8 : 8 + length].rstrip(b"\x00")


def fxp_chunk(data: bytes) -> tuple[str, bytes]:
    """The program name and opaque chunk of a VST2 ``.fxp`` patch (``CcnK`` ... ``FPCh``)."""
    if len(data) < 60 or data[:4] != b"CcnK":
        raise PresetError("not an .fxp patch (no 'CcnK' header)")
    kind = data[8:12]
    if kind != b"FPCh":
        raise PresetError(f"an .fxp of kind {kind.decode('latin-1')!r}: only opaque-chunk patches (FPCh) "
                          "carry a whole patch")
    name = data[28:56].split(b"\x00", 1)[0].decode("latin-1").strip()
    (size,) = struct.unpack(">I", data[56:60])
    chunk = data[60 : 60 + size]
    if len(chunk) != size:
        raise PresetError(f"a truncated .fxp patch ({len(chunk)} of {size} chunk bytes)")
    return name, chunk
