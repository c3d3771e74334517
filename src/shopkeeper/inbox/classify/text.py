"""What of a message is worth classifying: the customer's own words, without the quoted thread,
the reply header, the signature or the phone's footer, and not more than the model reads anyway."""

from __future__ import annotations

import re

#: Longest text handed to the model, in characters. The embedding model reads 256 word pieces
#: (about 1,000 characters of English); the TF-IDF features get a little more, and a pasted
#: 50 kB log or newsletter costs no more than a long email.
MAX_CHARS = 2000

# The line that opens a quoted reply. Mail clients write it in the sender's language and often
# wrap it over two lines, so it is matched on the joined text and everything from it on is dropped.
_REPLY_HEADER = re.compile(
    r"""^[ \t]*(?:
        On\b[^\n]{0,200}?(?:\n[^\n]{0,200}?)?\bwrote:            # Gmail, Apple Mail, Thunderbird
      | Le\b[^\n]{0,200}?(?:\n[^\n]{0,200}?)?\ba\ écrit\s?:      # French
      | Am\b[^\n]{0,200}?(?:\n[^\n]{0,200}?)?\bschrieb[^\n]{0,80}:  # German
      | El\b[^\n]{0,200}?(?:\n[^\n]{0,200}?)?\bescribió:         # Spanish
      | Op\b[^\n]{0,200}?(?:\n[^\n]{0,200}?)?\bschreef[^\n]{0,80}:  # Dutch
      | -{2,}\s*(?:Original\ Message|Forwarded\ message|Ursprüngliche\ Nachricht)\s*-{2,}
      | _{10,}\s*$                                               # Outlook's rule above the header block
      | From:[^\n]*\n(?:[^\n]*\n){0,2}?[ \t]*(?:Sent|Date):       # Outlook's header block
    )""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)
# RFC 3676's signature separator ("-- " alone on a line) and the footers phones append.
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)
_FOOTER = re.compile(
    r"^[ \t]*(?:Sent from my [^\n]{0,40}|Get Outlook for [^\n]{0,20}|Envoyé de mon [^\n]{0,40})[ \t]*$", re.I | re.M
)
_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
_SPACES = re.compile(r"[ \t\u00a0]+")


def clean_text(text: str) -> str:
    """The customer's own words of an inbound message, ready for the classifier.

    Quoted lines ('>') and everything from a reply header ("On Tue, Ann wrote:", Outlook's
    "From: … Sent: …" block) or a signature separator on are the shop's or someone else's words:
    left in, a customer's "thanks!" on top of a quoted complaint would be read as the complaint.
    The result is at most `MAX_CHARS` long, cut at a word boundary; it is empty when nothing of the
    customer's own is left (an attachment-only message, a bare forward)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    header = _REPLY_HEADER.search(text)
    if header is not None:
        text = text[: header.start()]
    signature = _SIGNATURE.search(text)
    if signature is not None:
        text = text[: signature.start()]
    text = _FOOTER.sub("", text)
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    text = _SPACES.sub(" ", "\n".join(lines))
    text = _BLANK_RUNS.sub("\n\n", text).strip()
    if len(text) > MAX_CHARS:
        cut = text.rfind(" ", 0, MAX_CHARS)
        text = text[: cut if cut > MAX_CHARS // 2 else MAX_CHARS].rstrip()
    return text
