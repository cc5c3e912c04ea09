"""LaTeX as plain text, for the vocabulary symbackprop's renderers and layer entries write:
``\\frac{\\partial C}{\\partial W^{(2)}}`` -> ``∂C/∂W⁽²⁾``, ``\\hat{x}`` -> ``x̂``, matrices as rows in
brackets, case splits as "A if c, else B". Text output (``derive``'s matrix form, ``explain --format
text``) reads it; nothing here computes."""
import re

SUP = str.maketrans("0123456789()-l", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾⁻ˡ")
_SUP = SUP


_WORDS = {r"\delta": "δ", r"\mu": "μ", r"\gamma": "γ", r"\beta": "β", r"\epsilon": "ε", r"\sigma": "σ",
          r"\nabla": "∇", r"\partial": "∂", r"\in": "∈", r"\odot": "⊙", r"\star": "⋆", r"\cdot": "·",
          r"\times": "×", r"\sum": "Σ", r"\max": "max", r"\tanh": "tanh", r"\quad": "  ", r"\textstyle": "",
          r"\mathbb{R}": "ℝ", r"\infty": "∞", r"\left": "", r"\right": "", r"\,": " ", r"\ ": " ", r"\;": " ",
          r"\mathrel{+}=": "+=", r"\top": "ᵀ", r"\_": "_", r"\%": "%", r"\cdots": "⋯", r"\ldots": "…",
          r"\dots": "…", r"\vdots": "⋮", r"\ddots": "⋱", r"\approx": "≈", r"\leq": "≤", r"\le": "≤",
          r"\geq": "≥", r"\ge": "≥", r"\neq": "≠", r"\ne": "≠", r"\lvert": "|", r"\rvert": "|", r"\qquad": "   ",
          r"\:": " ", r"\!": "", r"\to": "→", r"\div": "÷", r"\pm": "±", r"\Big": "", r"\big": "", r"\Bigl": "",
          r"\Bigr": "", r"\bigl": "", r"\bigr": "", r"\displaystyle": "", r"\lambda": "λ", r"\eta": "η",
          r"\theta": "θ", r"\rho": "ρ", r"\alpha": "α", r"\tau": "τ", r"\log": "log", r"\exp": "exp",
          r"\sqrt": "√", r"\{": "{", r"\}": "}", r"\$": "$", r"\&": "&", r"\#": "#", r"\Sigma": "Σ",
          r"\surd": "√", r"\lfloor": "⌊", r"\rfloor": "⌋", r"\dagger": "†", r"\circ": "∘", r"\ell": "ℓ",
          r"\lVert": "‖", r"\rVert": "‖", r"\leftarrow": "←"}
_WORDS_LONGEST_FIRST = sorted(_WORDS, key=len, reverse=True)   # every one starts with a backslash
_ACCENTS = {"hat": "\u0302", "tilde": "\u0303", "bar": "\u0304"}


def _group(text: str, i: int) -> tuple[str, int]:
    """The balanced {...} group starting at text[i] == "{": (its content, the index after it)."""
    depth = 0
    for j in range(i, len(text)):
        depth += (text[j] == "{") - (text[j] == "}")
        if depth == 0:
            return text[i + 1:j], j + 1
    return text[i + 1:], len(text)


_BEGIN = re.compile(r"\\begin\{(\w+\*?)\}")


def _cells(body: str) -> list[list[str]]:
    """An environment's rows (split at \\\\) and cells (split at &), outside braces."""
    rows, row, cell, depth, i = [], [], [], 0, 0
    while i < len(body):
        ch = body[i]
        depth += (ch == "{") - (ch == "}")
        if depth == 0 and body.startswith("\\\\", i):
            rows.append(row + ["".join(cell)])
            row, cell, i = [], [], i + 2
            continue
        if depth == 0 and ch == "&" and body[i - 1:i] != "\\":
            row.append("".join(cell))
            cell, i = [], i + 1
            continue
        cell.append(ch)
        i += 1
    rows.append(row + ["".join(cell)])
    return [[tex_to_text(c).strip() for c in r] for r in rows if any(c.strip() for c in r)]


def _environment(name: str, body: str) -> str:
    """A matrix as its rows in brackets ([1, 2; 3, 4]), a case split as "A if c; B otherwise" in
    braces, aligned lines one after another."""
    rows = _cells(body)
    if name.endswith("matrix"):
        return "[" + "; ".join(", ".join(r) for r in rows) + "]"
    if name == "cases":
        return "{" + "; ".join(re.sub(" +", " ", " ".join(r).replace("for ", "if ", 1)) for r in rows) + "}"
    return "  ".join("".join(r) for r in rows)


def tex_to_text(tex: str) -> str:
    """Plain text of a LaTeX line: ``\\frac{\\partial C}{\\partial W^{(2)}} = \\delta^{(2)}`` ->
    ``∂C/∂W⁽²⁾ = δ⁽²⁾``.

    >>> tex_to_text(r"\\left(W^{(2)}\\right)^\\top \\delta^{(2)} \\odot \\hat{x}^{(1)}")
    '(W⁽²⁾)ᵀ δ⁽²⁾ ⊙ x̂⁽¹⁾'
    """
    out, i = [], 0
    while i < len(tex):
        m = _BEGIN.match(tex, i)
        if m:
            end = tex.find(rf"\end{{{m.group(1)}}}", m.end())
            end = len(tex) if end < 0 else end
            out.append(_environment(m.group(1), tex[m.end():end]))
            i = end + len(rf"\end{{{m.group(1)}}}")
            continue
        if tex.startswith(r"\frac", i):
            top, i = _group(tex, i + 5)
            bottom, i = _group(tex, i)
            top, bottom = (tex_to_text(t).replace("∂ ", "∂") for t in (top, bottom))
            if top.startswith("∂") and bottom.startswith("∂"):
                out.append(f"{top}/{bottom}")
            else:
                wrap = lambda t: t if re.fullmatch(r"[\w⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾]+", t) else f"({t})"
                out.append(f"{wrap(top)}/{wrap(bottom)}")
            continue
        m = re.match(r"\\(operatorname|mathrm|text|textit|mathbf)\{", tex[i:])
        if m:
            start = i
            body, i = _group(tex, i + m.end() - 1)
            text = tex_to_text(body) if m.group(1) != "text" else body.replace(r"\_", "_")
            # "\text{stride } 1": the space is in the text or in the source, not in both
            text = text.rstrip(" ") if tex[i:i + 1] == " " else text
            text = text.lstrip(" ") if start and tex[start - 1] == " " else text
            out.append(text)
            continue
        m = re.match(r"\\(hat|tilde|bar)\{", tex[i:])
        if m:
            body, i = _group(tex, i + m.end() - 1)
            text = tex_to_text(body)
            out.append(text[:1] + _ACCENTS[m.group(1)] + text[1:])      # on the letter, not its superscript
            continue
        m = re.match(r"\\(overline|sqrt)\{", tex[i:])
        if m:
            body, i = _group(tex, i + m.end() - 1)
            out.append(("mean(" if m.group(1) == "overline" else "√(") + tex_to_text(body) + ")")
            continue
        if tex.startswith("^{", i) or tex.startswith("_{", i):
            body, j = _group(tex, i + 1)
            text = tex_to_text(body)
            if tex[i] == "^" and re.fullmatch(r"[0-9()l\-]+", text):
                out.append(text.translate(_SUP))
            else:
                out.append(tex[i] + (text if len(text) == 1 else f"({text})"))
            i = j
            continue
        word = tex[i] == "\\" and next((w for w in _WORDS_LONGEST_FIRST if tex.startswith(w, i) and not (
            w[-1].isalpha() and i + len(w) < len(tex) and tex[i + len(w)].isalpha())), None)
        if word:
            out.append(_WORDS[word])
            i += len(word)
            continue
        if tex[i] == "^" and tex.startswith(r"^\top", i):
            out.append("ᵀ")
            i += 5
            continue
        if tex[i] in "{}":
            i += 1
            continue
        if tex[i] == "\\":                       # an unknown command: its name
            m = re.match(r"\\([A-Za-z]+)", tex[i:])
            out.append(m.group(1) if m else "")
            i += m.end() if m else 1
            continue
        out.append(tex[i])
        i += 1
    return re.sub(r" {3,}", "  ", "".join(out))


