"""Mathematics as HTML that needs nothing from the network: LaTeX converted to MathML by latex2mathml (Chromium,
Firefox and Safari render MathML natively, so the atlas loads no script and no font), prose with ``$...$`` math,
and Markdown pages (docs/start-here.md, docs/notation.md, docs/theory/<chapter>.md) with the same math.

A formula latex2mathml does not know (an unknown macro comes out as its own name, backslash and all) is an error
naming the formula, never a page that shows LaTeX source."""
from __future__ import annotations

import html
import re

import mistune
from latex2mathml.converter import convert

# prose around math: `$...$` (not `$$`), the delimiters the registry's assumption statements use
_INLINE = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$(?!\$)")
# what is left of LaTeX in rendered text: a control word, or a braced sub/superscript
RAW_TEX = re.compile(r"\$\$|\\[A-Za-z]+|[_^]\{")


# macros latex2mathml does not know, in forms it does (\arg is an operator name like \max)
_FIXES = [(re.compile(r"\\arg(?![A-Za-z])"), r"\\mathrm{arg}\\,")]


class MathError(ValueError):
    """A formula that would reach the reader as LaTeX source."""


def formula(latex: str, display: str = "block") -> str:
    """``latex`` as one ``<math>`` element (its source kept in ``alttext``, for screen readers and search)."""
    source = latex
    for pat, rep in _FIXES:
        source = pat.sub(rep, source)
    try:
        out = convert(source, display=display)
    except Exception as err:   # latex2mathml raises its own exception types (and IndexError on unbalanced input)
        raise MathError(f"formula {latex!r}: latex2mathml cannot convert it ({err})") from err
    text = html.unescape(re.sub(r"<[^>]+>", "", out))
    if "\\" in text:
        left = ", ".join(sorted(set(re.findall(r"\\[A-Za-z]+", text)))) or "a backslash"
        raise MathError(f"formula {latex!r}: latex2mathml does not know {left}")
    return out.replace("<math ", f"<math alttext=\"{html.escape(latex, quote=True)}\" ", 1)


def prose(text: str) -> str:
    """HTML for prose with ``$...$`` math in it; LaTeX outside the delimiters is an error."""
    out, last = [], 0
    for m in _INLINE.finditer(text):
        out += [_plain(text[last:m.start()], text), formula(m.group(1), "inline")]
        last = m.end()
    out.append(_plain(text[last:], text))
    return "".join(out)


def _plain(part: str, whole: str) -> str:
    if RAW_TEX.search(part) or "$" in part:
        raise MathError(f"statement {whole!r}: LaTeX outside $...$ ({RAW_TEX.search(part) or '$'})")
    return html.escape(part, quote=True)


def markdown_math(text: str) -> str:
    """Markdown with its ``$...$`` math kept for MathJax (a notebook's markdown cell): ``$`` delimiters pass
    through; the same LaTeX-outside-delimiters rule as ``prose``."""
    for part in _INLINE.split(text)[::2]:
        if RAW_TEX.search(part):
            raise MathError(f"statement {text!r}: LaTeX outside $...$")
    return text


def _inline_math(renderer, text):
    return formula(text, "inline")


def _block_math(renderer, text):
    return formula(text.strip(), "block") + "\n"


def slug(text: str) -> str:
    """A heading's anchor as GitHub makes it ("Lemma 4.3" -> "lemma-43"), so docs' ``#...`` links hold here too."""
    text = html.unescape(re.sub(r"<[^>]+>", "", text)).strip().lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


class _Renderer(mistune.HTMLRenderer):
    def __init__(self, links=None):
        super().__init__(escape=False)    # docs/ are ours: their raw HTML (an <a id=...> anchor) is kept
        self._links = links

    def heading(self, text, level, **attrs):
        return f"<h{level} id=\"{html.escape(slug(text), quote=True)}\">{text}</h{level}>\n"

    def link(self, text, url, title=None):
        return super().link(text, self._links(url) if self._links else url, title)

    def image(self, text, url, title=None):
        return super().image(text, self._links(url) if self._links else url, title)


def markdown(text: str, links=None) -> str:
    """A Markdown document as HTML, its ``$...$`` and ``$$...$$`` math as MathML, its headings with GitHub's
    anchors; ``links(href)`` rewrites each link target (a repository ``.md`` to the page the site renders)."""
    md = mistune.create_markdown(renderer=_Renderer(links), plugins=["math", "table", "strikethrough"])
    md.renderer.register("inline_math", _inline_math)
    md.renderer.register("block_math", _block_math)
    return md(text)
