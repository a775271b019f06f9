"""Malformed configs fail before any work, with one message naming the field, and leave nothing behind."""
import pytest

from experiments.engine import cli
from experiments.engine import chapters
from experiments.engine import config as config_mod

BAD = [
    (["bogus=1"], "bogus"),
    (["train.stepz=5"], "train.stepz"),
    (["train.steps=abc"], "train.steps"),
    (["train.steps=1.5"], "train.steps"),
    (["seeds=true"], "seeds"),
    (["train.steps=0"], "train.steps"),
    (["seeds=0"], "seeds"),
    (["data.spread=-1.0"], "spread"),
    (["data.class_law=explicit", "data.class_probs=[0.5, 0.3, 0.1]", "bound.classes=[3]",
      "negatives.classes=[3]", "sample_complexity.classes=3", "block.classes=3"], "class_probs"),
    (["data.class_law=explicit", "data.n_classes=3", "data.class_probs=[0.5, 0.25, 0.25]", "bound.classes=[5]",
      "negatives.classes=[3]", "sample_complexity.classes=3", "block.classes=3"], "bound.classes"),
    (["negatives.k=[1, 512]"], "negatives.k"),
    (["bound.losses=['squared']"], "bound.losses"),
    (["encoder.kind=cnn"], "encoder.kind"),
    (["train.batch_size=100000"], "train.batch_size"),
    (["eval.probe_n=[5, 2]"], "eval.probe_n"),
    (["data.class_law=pareto"], "data.class_law"),
    (["eval.delta=1.5"], "eval.delta"),
    (["train.lr=[]"], "train.lr"),
    (["bound.classes=[1]"], "bound.classes"),
    (["train"], "train"),
]


@pytest.mark.parametrize("overrides,field", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_config_names_field_and_leaves_nothing(tmp_path, capsys, overrides, field):
    out = tmp_path / "results"
    argv = ["run", "contrastive", "--profile", "quick", "--out", str(out), "--jobs", "1"]
    for o in overrides:
        argv += ["--set", o]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "config error" in err and field in err, err
    assert err.count("\n") == 1, "one message, one line"
    assert not out.exists()


def test_good_override_is_typed_by_annotation():
    cfg = chapters.load_config("contrastive", "quick", ["train.lr=[0.1, 1]", "data.class_law=zipf",
                                                         "train.steps=7", "data.spread=1"])
    assert cfg.train.lr == (0.1, 1.0) and isinstance(cfg.train.lr, tuple)
    assert cfg.data.class_law == "zipf" and cfg.train.steps == 7 and cfg.data.spread == 1.0


def test_every_profile_loads_and_hash_is_stable():
    for profile in config_mod.PROFILES:
        a = chapters.load_config("contrastive", profile)
        b = chapters.load_config("contrastive", profile)
        assert config_mod.config_hash(a) == config_mod.config_hash(b)
    quick = chapters.load_config("contrastive", "quick")
    other = chapters.load_config("contrastive", "quick", ["train.steps=61"])
    assert config_mod.config_hash(quick) != config_mod.config_hash(other)


def test_unknown_profile():
    with pytest.raises(config_mod.ConfigError, match="profile"):
        chapters.load_config("contrastive", "huge")


def test_unknown_experiment_is_a_config_error(capsys):
    assert cli.main(["run", "nope", "--profile", "quick"]) == 2
    assert "experiment: unknown 'nope'" in capsys.readouterr().err
