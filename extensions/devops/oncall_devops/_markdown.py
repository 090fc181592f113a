"""Work item descriptions and comments are HTML in Azure DevOps; people on call write Markdown.

``to_html`` keeps HTML as it is and turns the Markdown an incident note uses (paragraphs, line breaks,
headings, lists, fenced and inline code, bold, italics, links) into HTML, escaping everything else.
Standard library only.
"""
import html
import re

_HTML = re.compile(r"^\s*<(?:p|div|h[1-6]|ul|ol|pre|table|br|b|i|strong|em|a|span|code)\b[^>]*>", re.IGNORECASE)
_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")


def looks_like_html(text):
    return bool(_HTML.match(text or ""))


def to_html(text):
    """HTML for a description or comment given as Markdown (or already HTML)."""
    if text is None:
        return None
    if looks_like_html(text):
        return text
    lines = text.replace("\r\n", "\n").split("\n")
    out, paragraph, i = [], [], 0

    def flush():
        if paragraph:
            out.append("<p>" + "<br>".join(_inline(line) for line in paragraph) + "</p>")
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith(fence.group(1)):
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end)
            out.append("<pre><code>" + html.escape("\n".join(body), quote=False) + "</code></pre>")
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
            continue
        for pattern, tag in ((_BULLET, "ul"), (_NUMBERED, "ol")):
            if pattern.match(line):
                flush()
                items = []
                while i < len(lines) and pattern.match(lines[i]):
                    items.append("<li>" + _inline(pattern.match(lines[i]).group(1)) + "</li>")
                    i += 1
                out.append(f"<{tag}>" + "".join(items) + f"</{tag}>")
                break
        else:
            if line.strip():
                paragraph.append(line.rstrip())
            else:
                flush()
            i += 1
    flush()
    return "".join(out)


_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")


def _inline(text):
    codes = []

    def keep_code(m):
        codes.append("<code>" + html.escape(m.group(1), quote=False) + "</code>")
        return f"\x00{len(codes) - 1}\x00"
    text = _CODE.sub(keep_code, text)
    text = html.escape(text, quote=False)
    text = _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', text)
    text = _BOLD.sub(r"<strong>\2</strong>", text)
    text = _ITALIC.sub(r"<em>\2</em>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], text)


def to_text(value, limit=None):
    """A short plain-text rendering of an HTML field (for tables)."""
    if not value:
        return ""
    text = re.sub(r"<br\s*/?>|</p>|</li>|</h\d>", " ", str(value), flags=re.IGNORECASE)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    text = " ".join(text.split())
    return text[: limit - 1] + "…" if limit and len(text) > limit else text
