"""Cut an API key out of text, in every form a server can echo it back in.

Error bodies and replies are stored (the call cache, rejects, the dataset's summary) and
printed. A proxy that echoes the request's headers returns the key as given; others return
it without its ``sk-`` prefix, lowercased, or base64-encoded (a Basic header, a debug dump
of the header block). Each form is cut out; base64 at any of its three alignments inside a
longer encoded string.
"""

from __future__ import annotations

import base64
import re

REDACTED = "[api key redacted]"
_MIN = 8  # a shorter form would match ordinary words


class Redactor:
    """``Redactor(key).apply(text)``: text with every form of the key replaced."""

    def __init__(self, secret: str | None) -> None:
        self.patterns: list[re.Pattern[str]] = []
        if not secret or len(secret) < _MIN:
            return
        plain = {secret}
        rest = secret
        while (m := re.match(r"[A-Za-z]{2,5}[-_]", rest)) and len(rest) - m.end() >= _MIN:
            rest = rest[m.end():]  # sk-proj-XYZ -> proj-XYZ -> XYZ
            plain.add(rest)
        # case-folded forms: matched without regard to case
        self.patterns.append(re.compile("|".join(re.escape(p) for p in sorted(plain, key=len, reverse=True)),
                                        re.IGNORECASE))
        encoded = set()
        for form in plain:
            encoded |= _base64_cores(form.encode())
        encoded = {e for e in encoded if len(e) >= _MIN}
        if encoded:  # base64 is case-sensitive
            self.patterns.append(re.compile("|".join(re.escape(e) for e in
                                                     sorted(encoded, key=len, reverse=True))))

    def apply(self, text: str) -> str:
        for pattern in self.patterns:
            text = pattern.sub(REDACTED, text)
        return text


def _base64_cores(data: bytes) -> set[str]:
    """The characters of base64(prefix + data + suffix) that depend on ``data`` alone, for
    each of the three alignments a prefix can give it; standard and URL-safe alphabets."""
    out = set()
    for offset in range(3):
        enc = base64.b64encode(b"\0" * offset + data).decode()
        first = -(-8 * offset // 6)  # the first character whose 6 bits are all data
        last = (8 * (offset + len(data))) // 6  # one past the last such character
        core = enc[first:last]
        out |= {core, core.replace("+", "-").replace("/", "_")}
    return out
