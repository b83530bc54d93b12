"""`emocal predict MODEL FILE`: calibrated probabilities for a file of texts, one output row per input row.

MODEL is an export folder (`emocal export`) or a registered model's URI (`models:/NAME@ALIAS`,
`models:/NAME/VERSION`), whose export folder is fetched from the MLflow store. FILE is CSV
(the text in `--text-column`), JSONL (one object per line, the text under that key) or plain
text (one text per line). Input that cannot be read as asked fails before any model loads,
naming the file and the row, line or column: a missing column, an empty file, bytes that are not
UTF-8, a JSONL line that is not an object. Empty and over-long texts are predicted (cut at the
training max_length, as in training) and flagged, never dropped.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


class InputError(ValueError):
    """Input that cannot be predicted as given; the message names the file, the line or column, the fix."""


@dataclass(frozen=True)
class Texts:
    """What was read: one text per input row, and each row's line number in the file."""

    texts: tuple[str, ...]
    lines: tuple[int, ...]


def input_format(path: Path, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "txt")


def decode(path: Path) -> str:
    """The file as text; bytes that are not UTF-8 name their line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(f"{path} line {line}: bytes that are not UTF-8 ({data[exc.start:exc.start + 4]!r} at byte "
                         f"{exc.start}); save the file as UTF-8") from None
    if not text.strip():
        raise InputError(f"{path} is empty: no texts to predict")
    return text


def read_texts(path: str | Path, fmt: str | None = None, column: str = "text") -> Texts:
    """The texts of a CSV, JSONL or plain-text file, one per row.

    Raises:
        InputError: the file is missing, empty, not UTF-8, or lacks the text column or key.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt = input_format(path, fmt)
    text = decode(path)
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if column not in (reader.fieldnames or []):
            raise InputError(f"{path}: no column {column!r} (its columns: {', '.join(reader.fieldnames or [])}); "
                             "pass --text-column NAME")
        texts, lines = [], []
        for row in reader:
            texts.append(row[column] or "")  # a short row has None there: an empty text, predicted and flagged
            lines.append(reader.line_num)
        if not texts:
            raise InputError(f"{path}: a header and no rows; no texts to predict")
        return Texts(tuple(texts), tuple(lines))
    if fmt == "jsonl":
        texts, lines = [], []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path} line {n}: not JSON ({exc})") from None
            if not isinstance(obj, dict) or column not in obj:
                raise InputError(f"{path} line {n}: no key {column!r}; pass --text-column NAME")
            texts.append("" if obj[column] is None else str(obj[column]))
            lines.append(n)
        return Texts(tuple(texts), tuple(lines))
    if fmt != "txt":
        raise InputError(f"unknown input format {fmt!r}: csv, jsonl or txt")
    rows = text.splitlines()
    return Texts(tuple(rows), tuple(range(1, len(rows) + 1)))


def open_model(model: str, tracking_uri: str | None):
    """An export folder, or a models:/ URI whose export folder is fetched from the MLflow store."""
    from trainables.serving import CalibratedClassifier

    if not model.startswith("models:/"):
        return CalibratedClassifier(model)
    import mlflow

    from orchestrator.locations import resolve_tracking_uri
    from trainables.serving import CALIBRATION_FILE

    mlflow.set_tracking_uri(resolve_tracking_uri(tracking_uri))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model, dst_path=tempfile.mkdtemp(prefix="emocal-")))
    found = sorted(local.glob(f"artifacts/*/{CALIBRATION_FILE}"))  # the export folder, under its own name
    if len(found) != 1:
        raise FileNotFoundError(f"{model} holds no emocal export folder (no artifacts/*/{CALIBRATION_FILE}); "
                                "is it a model `emocal export` logged?")
    return CalibratedClassifier(found[0].parent)


def write_rows(rows: list[dict], out: str | None) -> None:
    """CSV (or JSONL for a .jsonl path) to `out`, or CSV to stdout."""
    stream = open(out, "w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        if out and out.endswith((".jsonl", ".ndjson")):
            for row in rows:
                stream.write(json.dumps(row) + "\n")
            return
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if out:
            stream.close()


def _progress(done: int, total: int) -> None:
    if total >= 1000:  # long inputs only: a few lines on stderr, never on the output
        print(f"\rpredicted {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """`emocal predict MODEL FILE`: read (and check) the input, load the model, predict, write."""
    try:
        if args.abstain_below is not None and not 0.0 <= args.abstain_below <= 1.0:
            raise InputError(f"--abstain-below {args.abstain_below}: a probability in [0, 1]")
        read = read_texts(args.input, args.format, args.text_column)
        classifier = open_model(args.model, args.tracking_uri)
    except (InputError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    predictions = classifier.predict(read.texts, progress=_progress)
    rows = [{"line": line, "text": text, **row} for line, text, row in
            zip(read.lines, read.texts, predictions.rows(args.abstain_below))]
    write_rows(rows, args.out)
    flagged = int(predictions.empty.sum()), int(predictions.truncated.sum())
    if any(flagged):
        print(f"note: {flagged[0]} empty and {flagged[1]} over-long texts (cut at {classifier.max_length} tokens, as "
              "in training) were predicted and flagged (empty_text, truncated)", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """`python -m orchestrator.predict ...`."""
    from orchestrator.cli import run_module

    return run_module("predict", argv)


if __name__ == "__main__":
    sys.exit(main())
