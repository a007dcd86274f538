"""Text encoding detection for delimited and JSON exports (UTF-8, BOMs, GBK/GB18030, UTF-16)."""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

SAMPLE_BYTES = 256 * 1024
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "hz", "euc_cn", "iso2022_cn"}
_OTHER_CJK = {"big5", "big5hkscs", "cp950", "shift_jis", "cp932", "euc_jp", "euc_kr", "cp949"}
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decodes(sample: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _cjk_share(text: str) -> float:
    non_ascii = [c for c in text if ord(c) > 127]
    if not non_ascii:
        return 0.0
    cjk = sum(1 for c in non_ascii if "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f")
    return cjk / len(non_ascii)


def detect_encoding(sample: bytes) -> str:
    """Guess the codec of a text export from its first bytes.

    BOMs win; then UTF-16 without BOM (many NUL bytes); then strict UTF-8; then
    charset-normalizer, where any GB family answer (GB2312/GBK) is widened to GB18030, its
    superset, and a Western guess is overridden by GB18030 when that decodes the sample
    into mostly Chinese text (short Chinese samples are often misread as cp125x).

    Args:
        sample: The first bytes of the file (a sample cut mid-character is fine).

    Returns:
        A Python codec name.
    """
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    if not sample:
        return "utf-8"
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    half = max(len(sample) // 2, 1)
    if odd_nuls > half * 0.3 and odd_nuls > 3 * even_nuls:
        return "utf-16-le"
    if even_nuls > half * 0.3 and even_nuls > 3 * odd_nuls:
        return "utf-16-be"
    if _decodes(sample, "utf-8"):
        return "utf-8"
    best = from_bytes(sample).best()
    guess = codecs.lookup(best.encoding).name if best is not None else None
    if guess is not None and guess.replace("-", "_") in _GB_FAMILY:
        return "gb18030"
    if guess is not None and guess.replace("-", "_") in _OTHER_CJK:
        return guess
    if _decodes(sample, "gb18030"):
        text = codecs.getincrementaldecoder("gb18030")().decode(sample, final=False)
        if guess is None or _cjk_share(text) >= 0.5:
            return "gb18030"
    return guess or "gb18030"
