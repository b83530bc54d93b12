"""One generation of plain CE training: the project against Hugging Face `Trainer` (issue 7.2).

Same model folder (the packaged all-MiniLM-L6-v2), same stratified ISEAR subset (400 train,
200 test by default, drawn with the project's split seed), same epochs, batch size, max
length, learning rate, AdamW with weight decay 0.001, linear schedule without warm-up,
gradient clip 3.0, no evaluation during training, dynamic padding on both sides:

- project: `encode` + `build_model` + `train(CrossEntropyTask, select="last")` +
  `predict_logits` on the test rows + macro F1;
- HF: tokenizer + `AutoModelForSequenceClassification` + `Trainer(DataCollatorWithPadding)`
  `.train()` + `.predict()` on the test rows + macro F1 (`report_to="none"`, `use_cpu=True`,
  `eval_strategy="no"`, `save_strategy="no"`, `optim="adamw_torch"`).

Each is timed end to end (tokenise, load, train, predict, score), alternating which goes
first, repeats times; the ratio of medians is the figure. The two heads differ as the
libraries do (ours: RoBERTa-style dense+tanh on the first token; BERT's: its pooler), so
the F1s match only within noise. HF `Trainer` needs `accelerate>=1.1` (not an emocal
dependency): `pip install accelerate`.

    python bench/vs_hf_trainer.py [--train 400] [--test 200] [--epochs 2] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import warnings

import numpy as np
import torch
from _common import data_root, median, set_threads, timed
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from trainables.batching import encode
from trainables.data import load_dataset
from trainables.methods.losses import CrossEntropyTask
from trainables.models import (
    PACKAGED_MINILM,
    build_model,
    load_tokenizer,
    resolve_model_path,
)
from trainables.train import TrainConfig, predict_logits, train


def stratified(split, n: int, seed: int = 13):
    keep, _ = train_test_split(np.arange(len(split)), train_size=n, random_state=seed, stratify=split.labels)
    return split.subset(np.sort(keep))


def run_project(train_split, test_split, num_labels: int, cfg: TrainConfig, max_length: int) -> float:
    tokenizer = load_tokenizer(PACKAGED_MINILM)
    train_data = encode(train_split.texts, train_split.labels, tokenizer, max_length)
    test_data = encode(test_split.texts, test_split.labels, tokenizer, max_length)
    model = build_model(PACKAGED_MINILM, num_labels, seed=0)
    train(model, CrossEntropyTask(), train_data, None, cfg, seed=0)
    logits = predict_logits(model, test_data, cfg.eval_batch_size)
    return 100 * f1_score(test_data.labels, logits.argmax(-1), average="macro", zero_division=0)


def run_hf(train_split, test_split, num_labels: int, cfg: TrainConfig, max_length: int, out_dir: str) -> float:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    path = resolve_model_path(PACKAGED_MINILM)
    tokenizer = AutoTokenizer.from_pretrained(path)

    def rows(split):
        enc = tokenizer(list(split.texts), truncation=True, max_length=max_length)
        return [{"input_ids": i, "attention_mask": m, "labels": int(y)}
                for i, m, y in zip(enc["input_ids"], enc["attention_mask"], split.labels)]

    train_rows, test_rows = rows(train_split), rows(test_split)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels)
    targs = TrainingArguments(
        output_dir=out_dir, use_cpu=True, report_to="none", eval_strategy="no", save_strategy="no",
        logging_strategy="no", disable_tqdm=True, num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, max_grad_norm=cfg.grad_clip,
        lr_scheduler_type="linear", warmup_steps=0, optim="adamw_torch", seed=0,
        dataloader_num_workers=0, dataloader_pin_memory=False,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=train_rows,
                      data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    pred = trainer.predict(test_rows)
    return 100 * f1_score(pred.label_ids, pred.predictions.argmax(-1), average="macro", zero_division=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=400, help="ISEAR training rows (stratified)")
    p.add_argument("--test", type=int, default=200, help="ISEAR test rows (stratified)")
    p.add_argument("--epochs", type=int, default=2, help="2 keeps the run to minutes on 2 cores (the paper trains 3)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4, help="the quickstart's (few steps, small model)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads for both")
    p.add_argument("--data-root", default=None)
    args = p.parse_args()
    threads = set_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    ds = load_dataset("isear", args.data_root or data_root())
    train_split, test_split = stratified(ds.train, args.train), stratified(ds.test, args.test)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, select="last", bf16=False)
    steps = -(-args.train // args.batch_size) * args.epochs
    print(f"torch {torch.__version__}, {threads} thread(s); MiniLM on ISEAR {args.train} train / {args.test} test, "
          f"{args.epochs} epochs, batch {args.batch_size}, max_length {args.max_length}, lr {args.lr:g}, {steps} steps")

    times, f1s = {"project": [], "hf": []}, {"project": [], "hf": []}
    with tempfile.TemporaryDirectory() as tmp:
        contenders = {
            "project": lambda: run_project(train_split, test_split, ds.num_labels, cfg, args.max_length),
            "hf": lambda: run_hf(train_split, test_split, ds.num_labels, cfg, args.max_length, tmp),
        }
        for r in range(args.repeats):
            for name in (("project", "hf") if r % 2 == 0 else ("hf", "project")):
                seconds, f1 = timed(contenders[name])
                assert torch.get_num_threads() == threads, f"{name} changed the thread count"
                times[name].append(seconds)
                f1s[name].append(f1)
                print(f"  repeat {r + 1} {name:7s}: {seconds:6.1f} s  test macro F1 {f1:.2f}", flush=True)
    for name in ("project", "hf"):
        print(f"{name:7s}: median {median(times[name]):.1f} s, macro F1 {[round(f, 2) for f in f1s[name]]}")
    ratio = median(times["project"]) / median(times["hf"])
    verdict = "meets" if ratio <= 1.0 else "misses"
    print(f"vs_hf_trainer MiniLM ISEAR {args.train}/{args.test} {args.epochs} ep b{args.batch_size} L{args.max_length}, "
          f"{threads} thread(s), {args.repeats} repeats: project {median(times['project']):.1f} s vs HF Trainer "
          f"{median(times['hf']):.1f} s -> wall ratio {ratio:.2f} ({verdict} goal <= 1.0); macro F1 project "
          f"{median(f1s['project']):.1f} vs HF {median(f1s['hf']):.1f}")


if __name__ == "__main__":
    main()
