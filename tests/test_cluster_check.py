"""The per-node check before a cluster sweep (orchestrator/cluster.py): what a node that differs
from the driver is told. The happy path on two real nodes is in tests/test_cluster.py."""
from __future__ import annotations

from orchestrator.cluster import Expected, probe, problems
from orchestrator.tracking import package_version
from trainables.data import data_fingerprint
from trainables.models import PACKAGED_MINILM


def expected(tmp_path, data_root, **changes) -> Expected:
    (tmp_path / ".node-check").write_text("tok3n")
    fields = dict(run_dir=str(tmp_path), marker=".node-check", token="tok3n",
                  data={"isear": ("isear", str(data_root), 13, data_fingerprint("isear", data_root, 13))},
                  models=(PACKAGED_MINILM,), version=package_version())
    return Expected(**{**fields, **changes})


def test_a_node_like_the_driver_passes(tmp_path, data_root):
    e = expected(tmp_path, data_root)
    assert problems(e, "n1", probe(e)) == []


def test_a_node_without_the_run_folder_is_named_with_the_fix(tmp_path, data_root):
    e = expected(tmp_path, data_root)
    elsewhere = Expected(**{**vars(e), "run_dir": str(tmp_path / "not-mounted")})  # what that node sees
    found = problems(e, "n2", probe(elsewhere))
    assert len(found) == 1 and "node n2" in found[0] and "same path" in found[0] and "--runs" in found[0]


def test_other_data_another_model_path_or_version_are_each_named(tmp_path, data_root):
    """A method's own model (electra_lcl's) is checked as the sweep's is."""
    e = expected(tmp_path, data_root, models=(PACKAGED_MINILM, str(tmp_path / "models" / "roberta")))
    seen = probe(e)
    seen.update(data={"isear": "unreadable (no such file)"}, version="0.0.0")
    found = "\n".join(problems(e, "n3", seen))
    assert "other data files for isear" in found and "--data-root" in found
    assert f"cannot load model {tmp_path / 'models' / 'roberta'}" in found
    assert "emocal 0.0.0" in found


def test_a_node_without_wordnet_is_named_when_an_lcl_row_makes_synonym_copies(tmp_path, data_root, monkeypatch):
    e = expected(tmp_path, data_root, wordnet=True)
    monkeypatch.setenv("EMOCAL_WORDNET", str(tmp_path / "no-wordnet"))
    found = problems(e, "n4", probe(e))
    assert len(found) == 1 and "node n4" in found[0] and "synonym copies" in found[0]
    assert "apt-get install wordnet-base" in found[0]
    assert problems(expected(tmp_path, data_root), "n4", probe(expected(tmp_path, data_root))) == []  # not asked
