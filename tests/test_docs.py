"""The docs stay honest: every `vidaction ...` line they show parses with the real argument
parser, and every measured figure comes from the bench/results/*.json its section names.

Commands are taken from fenced and indented code blocks and from inline `vidaction ...` code
spans: `$ ` prompts, `\\` continuations, `# comments`, pipes and redirections, `[optional]`
brackets and `...` are understood; placeholders (RUN, VIDEO, DIR) are plain strings, so a
doc writes real flags and real choices (`--format tflite`, not `--format savedmodel|tflite`).

Figures: a section (a heading down to the next heading) names its sources as
`bench/results/NAME.json` anywhere in its text; a subsection that names none has its
parent's. In such a section every number in a table body, and every decimal, percentage or
"12x" in the prose, must equal a number of those files after the same rounding (half up, as
many decimals as written; a percentage may also be a fraction times 100). Code, inline
code, link targets and scientific notation (bounds: "within 1e-4") are not figures.
docs/benchmarks.md and README.md must name a source in every section that holds a figure;
benchmarks.md names every bench/results file and every bench script; the README links every
docs page.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from vidaction.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [f for f in files if f.exists()]


# ---------------------------------------------------------------- commands

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"`(vidaction [^`]+)`")
PROMPT = re.compile(r"^\s*(\$\s+)?")
SHELL_SEPARATORS = {"|", "||", "&&", ";", "&"}


def commands(text: str) -> list[tuple[int, str, bool]]:
    """(line number, command, inline) for every vidaction command line in a markdown text."""
    out: list[tuple[int, str, bool]] = []
    lines = text.splitlines()
    fenced = False
    prev_blank = True
    indented = False  # inside an indented code block
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        if FENCE.match(line):
            fenced = not fenced
            i += 1
            continue
        code = fenced or (line.startswith("    ") and (prev_blank or indented))
        indented = not fenced and code
        if line.strip():
            prev_blank = False
        else:
            prev_blank, indented = True, False
        if code:
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            cmd = line[PROMPT.match(line).end():].strip()
            if cmd.startswith("vidaction ") or cmd == "vidaction":
                out.append((number, cmd, False))
        else:
            out += [(number, m.group(1), True) for m in INLINE.finditer(line)]
        i += 1
    return out


def argv_of(cmd: str) -> list[str]:
    """The arguments vidaction would get: the first command of a pipeline, redirections,
    comments, `[` `]` and `...` taken out."""
    tokens = shlex.split(cmd, comments=True)
    argv: list[str] = []
    skip = False
    for tok in tokens[1:]:
        if skip:
            skip = False
            continue
        if tok in SHELL_SEPARATORS:
            break
        if re.fullmatch(r"\d?>>?|<|&>", tok):
            skip = True  # the redirection's target is the next token
            continue
        if re.match(r"^(\d?>>?|<|&>)\S", tok):
            continue  # `2>/dev/null`, `>out.txt`
        tok = tok.lstrip("[").rstrip("]")
        if tok in ("", "...", "…"):
            continue
        argv.append(tok)
    return argv


def parse_error(cmd: str, inline: bool = False) -> str | None:
    """None when the real parser accepts the command, else argparse's message. Inline code
    may name a command without its required arguments (`vidaction data check`); argparse
    checks those last, so every flag and choice before them is still checked."""
    try:
        argv = argv_of(cmd)
    except ValueError as e:  # unbalanced quotes
        return f"cannot split: {e}"
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            build_parser().parse_args(argv)
    except SystemExit as e:
        why = err.getvalue().strip().splitlines()[-1] if err.getvalue() else str(e)
        if e.code not in (0, None) and not (inline and "arguments are required" in why):
            return why  # `--help` and `--version` exit 0
    return None


def command_errors(path: Path, text: str | None = None) -> list[str]:
    text = path.read_text() if text is None else text
    return [f"{path.name}:{n}: {cmd}\n    {why}"
            for n, cmd, inline in commands(text) if (why := parse_error(cmd, inline))]


# ---------------------------------------------------------------- figures

JSON_NAME = re.compile(r"bench/results/([\w.-]+\.json)")
# 12, 1,854.1, 0.59, 71.4%, 31 %, 9.2x; not the 8 of 8x172, the 0 of a0 or 2 of K2
FIGURE = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:\s?(%)|(x)(?!\w)|)"
                    r"(?!\w|%|\.\d)")
HEADING = re.compile(r"^(#{1,6})\s")
RULE = re.compile(r"\|?[\s:|-]*-[\s:|-]*\|?")  # a table's |---|---| line


def _figures_in(text: str) -> list[tuple[str, str]]:
    return [(m.group(1) + (m.group(2) or ""), m.group(3) or m.group(4) or "")
            for m in FIGURE.finditer(text)]


def json_numbers(value) -> list[Decimal]:
    """Every number in a JSON value, numbers written inside its strings included."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        finite = value == value and abs(value) != float("inf")
        return [abs(Decimal(repr(value)))] if finite else []
    if isinstance(value, str):  # "320x240, 25 fps", "first_12_frames": every digit run
        return [Decimal(d) for d in re.findall(r"\d+(?:\.\d+)?", value)]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in json_numbers(k) + json_numbers(v)]
    return [n for v in value for n in json_numbers(v)] if isinstance(value, list) else []


def matches(figure: str, unit: str, values: list[Decimal]) -> bool:
    """The figure is one of the values rounded half up to the decimals shown (a percentage
    may be a fraction)."""
    shown = Decimal(figure.replace(",", ""))
    step = Decimal(1).scaleb(shown.as_tuple().exponent)
    scales = [Decimal(1), Decimal(100)] if unit == "%" else [Decimal(1)]
    return any((v * k).quantize(step, rounding=ROUND_HALF_UP) == shown
               for v in values for k in scales)


def _plain(line: str) -> str:
    """A line without its code spans, link targets, images and numbers in scientific notation
    (bounds such as "within 1e-4", not rounded figures)."""
    line = re.sub(r"\d+(?:\.\d+)?e[-+]?\d+", " ", line)
    line = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", line)
    line = re.sub(r"\]\([^)]*\)", "] ", line)
    return re.sub(r"`[^`]*`", " ", line)


def sections(text: str) -> list[tuple[int, list[str], list[tuple[int, str]]]]:
    """(heading line, JSON names in force, [(line number, line)]) per section. The names in
    force are those the section writes, else those in force in the section it lies in;
    fenced code is read for names only."""
    out = []
    stack: list[tuple[int, list[str]]] = []  # enclosing headings: (level, names in force)
    level, start, names, lines, fenced = 0, 1, [], [], False
    for number, line in enumerate(text.splitlines() + ["# end"], 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        h = None if fenced else HEADING.match(line)
        if h:
            in_force = list(dict.fromkeys(names)) or (stack[-1][1] if stack else [])
            out.append((start, in_force, lines))
            stack.append((level, in_force))
            while stack and stack[-1][0] >= len(h.group(1)):
                stack.pop()
            level, start, names, lines = len(h.group(1)), number, [], []
        names += JSON_NAME.findall(line)
        if not fenced and not h:
            lines.append((number, line))
    return out


def figures(lines: list[tuple[int, str]]) -> list[tuple[int, str, str]]:
    """(line number, number, unit) of a section's figures: every number of a table's body,
    decimals, percentages and multiples in prose."""
    out = []
    for k, (number, line) in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("|"):
            following = lines[k + 1][1].strip() if k + 1 < len(lines) else ""
            if RULE.fullmatch(stripped) or RULE.fullmatch(following):
                continue  # the rule, or the header above it
            out += [(number, f, u) for f, u in _figures_in(_plain(stripped))]
        elif stripped and not line.startswith("    "):
            out += [(number, f, u) for f, u in _figures_in(_plain(stripped))
                    if u or "." in f]
    return out


def figure_errors(path: Path, text: str | None = None, results: Path = RESULTS,
                  strict: bool = False) -> list[str]:
    """Figures that no named JSON holds; with strict, also sections with figures and no
    source."""
    text = path.read_text() if text is None else text
    wrong = []
    for start, names, lines in sections(text):
        found = figures(lines)
        if not names:
            if strict and found:
                n, fig, unit = found[0]
                wrong.append(f"{path.name}:{start}: a section with figures ({fig}{unit} on "
                             f"line {n}) names no bench/results/*.json")
            continue
        values: list[Decimal] = []
        for name in names:
            if not (results / name).exists():
                wrong.append(f"{path.name}:{start}: names bench/results/{name}, which does "
                             "not exist")
                continue
            values += json_numbers(json.loads((results / name).read_text()))
        for n, fig, unit in found:
            if not matches(fig, unit, values):
                wrong.append(f"{path.name}:{n}: {fig}{unit} is in none of "
                             f"{', '.join(names)}")
    return wrong


# ---------------------------------------------------------------- links

LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    fenced, out = False, set()
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (h := HEADING.match(line)):
            out.add(slug(line[h.end():]))
    return out


def link_errors(path: Path, text: str | None = None) -> list[str]:
    """Relative links whose file or heading does not exist."""
    text = path.read_text() if text is None else text
    wrong = []
    for number, line in enumerate(text.splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            file, _, frag = target.partition("#")
            dest = (path.parent / file).resolve()
            if file and not dest.exists():
                wrong.append(f"{path.name}:{number}: {target}: no such file")
            elif frag and (not file or dest.suffix == ".md") \
                    and frag not in anchors(dest.read_text() if file else text):
                wrong.append(f"{path.name}:{number}: {target}: no such heading")
    return wrong


# ---------------------------------------------------------------- the docs


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_every_command_in_the_docs_parses(path):
    errors = command_errors(path)
    assert not errors, "commands the parser refuses:\n" + "\n".join(errors)


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_every_figure_comes_from_the_json_its_section_names(path):
    errors = figure_errors(path, strict=path in (BENCHMARKS, ROOT / "README.md"))
    assert not errors, "figures without a source:\n" + "\n".join(errors)


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_every_relative_link_finds_its_file_and_heading(path):
    errors = link_errors(path)
    assert not errors, "broken links:\n" + "\n".join(errors)


def test_a_broken_link_is_caught(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n\n## The `loop` default: why\n")
    page = tmp_path / "b.md"
    good = "[a](a.md) [b](a.md#the-loop-default-why) [c](#here) [d](https://x.org/y)\n# Here\n"
    assert link_errors(page, good) == []
    bad = "[a](gone.md) and [b](a.md#the-pad-default)\n"
    assert [e.split(": ")[-1] for e in link_errors(page, bad)] == ["no such file",
                                                                  "no such heading"]


def test_benchmarks_page_names_every_result_and_every_script():
    text = BENCHMARKS.read_text()
    missing = [f"bench/results/{p.name}" for p in sorted(RESULTS.glob("*.json"))
               if f"bench/results/{p.name}" not in text]
    missing += [f"bench/{p.name}" for p in sorted((ROOT / "bench").glob("*.py"))
                if not p.name.startswith("_") and f"bench/{p.name}" not in text]
    assert not missing, "docs/benchmarks.md does not name: " + ", ".join(missing)


def test_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md"))
               if f"docs/{p.name}" not in readme]
    assert not missing, "README.md does not link: " + ", ".join(missing)


def test_readme_is_a_landing_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; the manual lives in docs/"
    assert "make demo" in lines[3] and "make test" in lines[4]


# ---------------------------------------------------------------- the checks can fail

SAMPLE = """\
# Sample

```bash
$ vidaction train --data DIR --out RUN \\
      --model rgb-diff --epochs 3   # a comment
vidaction predict RUN clip.mp4 [--top-k 5] [--clips 3] ... --json | head -1 > out.txt
vidaction export RUN --format tflite --quantize int8 --out model.tflite 2>/dev/null
vidaction --help
```

Prose with `vidaction evaluate RUN --split test` inline (`vidaction data check` names a
command), and an indented block:

    vidaction stream RUN clip.mp4 --reset-every 8
"""


def test_the_extractor_reads_prompts_continuations_and_every_kind_of_block():
    found = commands(SAMPLE)
    assert [(n, inline) for n, _, inline in found] == [
        (4, False), (6, False), (7, False), (8, False), (11, True), (11, True), (14, False)]
    assert argv_of(found[0][1]) == ["train", "--data", "DIR", "--out", "RUN", "--model",
                                   "rgb-diff", "--epochs", "3"]
    assert argv_of(found[1][1]) == ["predict", "RUN", "clip.mp4", "--top-k", "5", "--clips",
                                   "3", "--json"]
    assert argv_of(found[2][1])[-1] == "model.tflite"
    assert command_errors(Path("sample.md"), SAMPLE) == []


@pytest.mark.parametrize("bad, why", [
    ("vidaction train --data DIR --out RUN --epoch-count 3", "unrecognized arguments"),
    ("vidaction export RUN --format onnx --out m.onnx", "invalid choice"),
    ("vidaction export RUN --format savedmodel|tflite --out m", "invalid choice"),
    ("vidaction predict RUN clip.mp4 --top-k five", "--top-k: invalid"),
    ("vidaction fly RUN", "invalid choice"),
    ("vidaction train --data DIR --out RUN --epochs", "expected one argument"),
    ("vidaction export RUN --format tflite", "required: --out"),
])
def test_a_wrong_command_in_a_doc_is_caught_with_its_line(bad, why):
    text = SAMPLE + f"\n```bash\n{bad}\n```\n"
    errors = command_errors(Path("sample.md"), text)
    assert len(errors) == 1 and errors[0].startswith(f"sample.md:{text.count(chr(10)) - 1}: ")
    assert why in errors[0]


def test_a_figure_that_drifts_from_its_json_is_caught(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps(
        {"rows": [{"model": "rgb-diff", "accuracy": 0.7142857, "train_s": 52.8,
                   "ms": 18.44, "speedup": 9.1697, "note": "320x240, 25 fps"}]}))
    page = ("# Bench\n\n`python bench/b.py` writes bench/results/b.json.\n\n"
            "| model | top-1 | train s | ms | speed-up |\n|---|---|---|---|---|\n"
            "| `rgb-diff` | {acc} | {train} | 18.4 | 9.2x |\n\n"
            "Measured at 25 fps: {pct} top-1, in 0.0s flat.\n")
    good = page.format(acc="0.71", train="53", pct="71.4%").replace(" in 0.0s flat", "")
    assert figure_errors(Path("b.md"), good, tmp_path, strict=True) == []
    for drifted, shown in [(dict(acc="0.72", train="53", pct="71.4%"), "0.72"),
                           (dict(acc="0.71", train="54", pct="71.4%"), "54"),
                           (dict(acc="0.71", train="53", pct="71.5%"), "71.5%")]:
        errors = figure_errors(Path("b.md"), page.format(**drifted).replace(" in 0.0s flat",
                                                                           ""),
                               tmp_path, strict=True)
        assert len(errors) == 1 and f" {shown} is in none of b.json" in errors[0], errors


def test_a_section_with_figures_and_no_source_is_caught(tmp_path):
    page = "# Bench\n\n## Speed\n\nIt runs at 18.4 ms a frame.\n"
    errors = figure_errors(Path("b.md"), page, tmp_path, strict=True)
    assert len(errors) == 1 and "names no bench/results" in errors[0]
    assert figure_errors(Path("b.md"), page, tmp_path) == []  # other pages: only sourced ones
    named = page.replace("# Bench\n", "# Bench\n\nbench/results/missing.json\n")
    assert "does not exist" in figure_errors(Path("b.md"), named, tmp_path)[0]
