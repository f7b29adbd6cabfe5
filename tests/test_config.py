"""Config loading: packaged defaults, user YAML deep-merge, --set overrides, validation by key."""
from __future__ import annotations

import pytest

from pipeline.config import ConfigError, load_config, load_defaults, merge_config, parse_override


def test_defaults_come_from_packaged_yaml():
    cfg = load_config()
    assert cfg == load_defaults()
    for section in ("input", "normalize", "langid", "quality", "dedup", "pii", "tokenize", "output"):
        assert isinstance(cfg[section], dict), section
    assert cfg["output"]["kept_format"] == "jsonl"


def test_user_yaml_deep_merges_and_keeps_other_defaults(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("output:\n  kept_format: parquet\nnormalize:\n  strip_html: false\n", encoding="utf-8")
    cfg = load_config(path)
    defaults = load_defaults()
    assert cfg["output"]["kept_format"] == "parquet"
    assert cfg["normalize"]["strip_html"] is False
    assert cfg["normalize"]["unicode_form"] == defaults["normalize"]["unicode_form"]
    assert cfg["output"]["num_kept_files"] == defaults["output"]["num_kept_files"]


def test_unknown_key_names_the_dotted_key(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("output:\n  kept_fromat: parquet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"output\.kept_fromat"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"'nosuchsection'"):
        merge_config(load_defaults(), {"nosuchsection": {"x": 1}})


@pytest.mark.parametrize("user, key", [
    ({"output": {"num_kept_files": "four"}}, "output.num_kept_files"),
    ({"output": {"num_kept_files": 2.5}}, "output.num_kept_files"),
    ({"normalize": {"enabled": "yes"}}, "normalize.enabled"),
    ({"normalize": {"enabled": 1}}, "normalize.enabled"),
    ({"input": {"text_field": 3}}, "input.text_field"),
    ({"output": "parquet"}, "output"),
])
def test_wrong_type_names_the_dotted_key(user, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        merge_config(load_defaults(), user)


def test_type_rules_int_for_float_null_for_str_lists():
    defaults = {"s": {"ratio": 0.5, "path": None, "words": ["a"], "any": [], "n": 3}}
    cfg = merge_config(defaults, {"s": {"ratio": 1, "path": "/models/x.bin", "words": ["b", "c"], "any": [1, "x"]}})
    assert cfg["s"]["ratio"] == 1.0 and isinstance(cfg["s"]["ratio"], float)
    assert cfg["s"]["path"] == "/models/x.bin"
    assert cfg["s"]["words"] == ["b", "c"]
    assert merge_config(defaults, {"s": {"path": None}})["s"]["path"] is None
    with pytest.raises(ConfigError, match=r"s\.path"):
        merge_config(defaults, {"s": {"path": 5}})
    with pytest.raises(ConfigError, match=r"s\.words\[1\]"):
        merge_config(defaults, {"s": {"words": ["ok", 7]}})
    with pytest.raises(ConfigError, match=r"s\.n"):
        merge_config(defaults, {"s": {"n": True}})  # bool is not an int here
    assert defaults["s"]["words"] == ["a"]  # defaults are not mutated


def test_set_overrides_apply_after_file_and_are_validated(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("output:\n  num_kept_files: 4\n", encoding="utf-8")
    cfg = load_config(path, ["output.num_kept_files=8", "dedup.enabled=false", "output.kept_format=parquet"])
    assert cfg["output"]["num_kept_files"] == 8
    assert cfg["dedup"]["enabled"] is False
    assert cfg["output"]["kept_format"] == "parquet"
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}
    with pytest.raises(ConfigError, match=r"output\.num_kept_filez"):
        load_config(None, ["output.num_kept_filez=3"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["output.num_kept_files"])


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(lst)
