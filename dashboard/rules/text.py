"""Text that comes from outside — producers' free text and ids in URLs — made safe to show and to look up.

- **Bidi controls** (U+202A–U+202E embeddings and overrides, U+2066–U+2069 isolates) in a
  description or an address would reorder what the wall, /explore and the exports show ("路\u202e号81"
  shows as "路18号"). :func:`strip_bidi` removes them; ``dashboard.store.models.FreeText`` applies it to
  every read of the producers' free-text columns, so stored rows (old ones included) reach every
  screen, export and API answer without them. The database keeps what the producer sent.
- **Ids** taken from a URL or an API path are checked with :func:`is_case_id` before any query:
  a NUL byte or another control character cannot reach the database (PostgreSQL refuses NUL in
  text with an error) and is answered like an unknown id.
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_STRIP = str.maketrans("", "", BIDI_CONTROLS)
CASE_ID_MAX = 64  # feeds/schema/case-event.v1.json: case_id maxLength


def strip_bidi(text: str) -> str:
    """``text`` without bidi embedding, override and isolate controls."""
    return text.translate(_STRIP)


def is_case_id(text: object) -> bool:
    """Could ``text`` be a producer's case id? 1–64 characters, not blank, no control,
    format (bidi), surrogate or unassigned code point."""
    if not isinstance(text, str) or not 0 < len(text) <= CASE_ID_MAX or not text.strip():
        return False
    return not any(unicodedata.category(ch)[0] == "C" for ch in text)
