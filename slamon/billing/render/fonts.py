"""The Chinese font a PDF statement embeds, found with fontconfig when a PDF is first drawn.

reportlab embeds (a subset of) TrueType fonts only, not OpenType fonts with CFF outlines such as
Noto Sans CJK, and a PDF that merely names a font (STSong-Light) shows boxes wherever that font is
missing. So the statement embeds a TrueType CJK font from the machine: the first of `PREFERRED`
that fontconfig lists for Simplified Chinese, else any other TrueType one it lists. None at all is
an error that names the Debian package to install.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

from slamon.errors import StatementError

PACKAGE = "fonts-wqy-microhei"
# TrueType (glyf) CJK families Debian ships, best first: their Latin letters and digits are fine
# too, so one font prints the whole statement
PREFERRED = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "AR PL SungtiL GB",
)
MONO = {"WenQuanYi Micro Hei": "WenQuanYi Micro Hei Mono", "WenQuanYi Zen Hei": "WenQuanYi Zen Hei Mono"}
MISSING = (
    f"no Chinese TrueType font for the PDF: install one, e.g. Debian's {PACKAGE} "
    f"(apt-get install {PACKAGE}; fonts-arphic-uming also works)"
)


@dataclass(frozen=True, slots=True)
class FontFile:
    family: str
    path: str
    index: int  # the face in a TrueType collection (.ttc)


@dataclass(frozen=True, slots=True)
class Fonts:
    """The names the fonts are registered under with reportlab: text, and figures in columns."""

    text: str
    mono: str
    family: str  # the font's family name, as a PDF reader lists it


def listed() -> list[FontFile]:
    """The TrueType faces fontconfig lists for Simplified Chinese."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        raise StatementError(f"{MISSING}; fontconfig's fc-list, which finds it, is missing too")
    done = subprocess.run(  # noqa: S603  (argv, no shell)
        [fc_list, "--format", "%{file}\t%{index}\t%{family[0]}\t%{fontformat}\n", ":lang=zh-cn"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    found = []
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[3] == "TrueType" and parts[1].isdigit():
            found.append(FontFile(parts[2], parts[0], int(parts[1])))
    return found


def choose(candidates: list[FontFile]) -> list[FontFile]:
    """The preferred families first (in `PREFERRED`'s order), then the others by family and file."""
    rank = {family: i for i, family in enumerate(PREFERRED)}
    return sorted(candidates, key=lambda f: (rank.get(f.family, len(rank)), f.family, f.path, f.index))


@functools.cache
def cjk_fonts() -> Fonts:
    """Registers the CJK font (and its monospaced sibling, when it has one) once per process."""
    candidates = listed()
    for font in choose(candidates):
        try:
            pdfmetrics.registerFont(TTFont("slamon-cjk", font.path, subfontIndex=font.index))
        except TTFError:  # e.g. CFF outlines in a .ttf: fontconfig's format says TrueType all the same
            continue
        mono = "slamon-cjk"
        sibling = next((f for f in candidates if f.family == MONO.get(font.family)), None)
        if sibling is not None:
            try:
                pdfmetrics.registerFont(TTFont("slamon-cjk-mono", sibling.path, subfontIndex=sibling.index))
                mono = "slamon-cjk-mono"
            except TTFError:
                pass
        return Fonts(text="slamon-cjk", mono=mono, family=font.family)
    raise StatementError(MISSING)
