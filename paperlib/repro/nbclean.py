"""Executed notebooks as a reader should see them: :func:`clean_notebook` strips what changes
from one run to the next (papermill and kernel timings, the temporary output path, the random
id of the injected-parameters cell, the Python patch version), and :func:`output_problems`
lists what a reader should never see in an output: a stderr stream, an error, a warning, an
absolute path of the machine that ran it, or a stray return value (such as a list of
``PosixPath``\\ s left as a cell's last value).

The papermill wrapper (:mod:`paperlib.repro.notebooks`) cleans every notebook it writes and reports
the problems; ``tests/test_notebooks.py`` checks the committed executed notebooks with both.

>>> import nbformat
>>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
>>> nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stderr", text="Warning: x\\n"),
...     nbformat.v4.new_output("execute_result", {"text/plain": "[PosixPath('/home/me/f.png')]"})]
>>> for problem in output_problems(nb):
...     print(problem)
cell 0: stderr stream: Warning: x
cell 0: warning: Warning: x
cell 0: absolute path: /home/me/f.png
cell 0: stray return value: [PosixPath('/home/me/f.png')]
"""

from __future__ import annotations

import re
from typing import Any

#: Notebook-level papermill keys kept (how the notebook was run); the rest (timings, the
#: temporary input/output paths, environment variables) changes from run to run.
KEEP_PAPERMILL = ("parameters",)
#: Cell metadata keys that are timings or run state.
VOLATILE_CELL_KEYS = ("execution", "papermill", "collapsed", "scrolled")
#: Output MIME types that make an ``execute_result`` worth showing (a table, a figure, ...).
RICH_MIME = ("text/html", "text/markdown", "text/latex", "image/png", "image/svg+xml",
             "application/vnd.jupyter.widget-view+json")

#: A POSIX path with at least two components that is not part of a word, a URL or a relative
#: path (``../figures`` and ``https://a/b`` do not match), or a Windows drive path.
ABSOLUTE_PATH = re.compile(r"(?<![\w/.:~%-])/(?:[\w.+@-]+/)+[\w.+@-]*|\b[A-Za-z]:\\[\w.\\-]+")
WARNING = re.compile(r"\b\w*Warning\b|^\s*WARNING\b", re.MULTILINE)
STRAY = re.compile(r"\b(?:Posix|Windows)?Path\(|^<[\w.]+ object at 0x", re.MULTILINE)


def clean_notebook(nb: Any) -> Any:
    """Strip volatile metadata from an executed notebook, in place (and return it).

    Kept: outputs, execution counts (sequential, so the same on every run), cell tags, the
    kernelspec, the language name and the papermill ``parameters``. The injected-parameters
    cell gets the stable id ``injected-parameters``.
    """
    meta = nb.metadata
    if "papermill" in meta:
        meta["papermill"] = {k: v for k, v in meta["papermill"].items() if k in KEEP_PAPERMILL}
    meta.pop("widgets", None)  # widget state: model ids of one kernel session
    if "language_info" in meta:
        meta["language_info"].pop("version", None)
    for cell in nb.cells:
        for key in VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
    return nb


def _texts(output: Any) -> list[str]:
    if output.get("output_type") == "stream":
        return [str(output.get("text", ""))]
    if output.get("output_type") == "error":
        return [f"{output.get('ename')}: {output.get('evalue')}"]
    data = output.get("data", {})
    return [str(v) if not isinstance(v, list) else "".join(v)
            for k, v in data.items() if k.startswith("text/")]


def _first_line(text: str, limit: int = 100) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def output_problems(nb: Any) -> list[str]:
    """What a reader should not see in the outputs of ``nb``, one line per problem
    (``cell <index>: <kind>: <excerpt>``); empty when clean."""
    problems: list[str] = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            texts = _texts(out)
            if kind == "stream" and out.get("name") == "stderr":
                problems.append(f"cell {i}: stderr stream: {_first_line(texts[0])}")
            if kind == "error":
                problems.append(f"cell {i}: error: {_first_line(texts[0])}")
            for text in texts:
                if m := WARNING.search(text):
                    line = text[text.rfind("\n", 0, m.start()) + 1:]
                    problems.append(f"cell {i}: warning: {_first_line(line)}")
                if m := ABSOLUTE_PATH.search(text):
                    problems.append(f"cell {i}: absolute path: {m.group(0)}")
            if kind == "execute_result":
                data = out.get("data", {})
                plain = str(data.get("text/plain", ""))
                if not any(k in data for k in RICH_MIME) or STRAY.search(plain):
                    problems.append(f"cell {i}: stray return value: {_first_line(plain)}")
    return problems


def volatile_metadata(nb: Any) -> list[str]:
    """Metadata keys :func:`clean_notebook` would strip (empty for a clean notebook)."""
    found = [f"papermill.{k}" for k in nb.metadata.get("papermill", {}) if k not in KEEP_PAPERMILL]
    if "widgets" in nb.metadata:
        found.append("widgets")
    if "version" in nb.metadata.get("language_info", {}):
        found.append("language_info.version")
    for i, cell in enumerate(nb.cells):
        found += [f"cell {i}: {k}" for k in VOLATILE_CELL_KEYS if k in cell.get("metadata", {})]
        if ("injected-parameters" in cell.get("metadata", {}).get("tags", [])
                and cell.get("id") != "injected-parameters"):
            found.append(f"cell {i}: random id {cell.get('id')}")
    return found
