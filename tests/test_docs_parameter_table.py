"""docs/how-it-works.md: the committed parameter tables (§6) are what docs/parameter_table.py produces
from the code, its counts are those of real TimeLLM models, and the section anchors stay put."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from timellm_core.backbones import CATALOGUE, load_backbone
from timellm_core.config import BackboneConfig
from timellm_core.model import TimeLLM

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOC = PROJECT_ROOT / "docs" / "how-it-works.md"


@pytest.fixture(scope="module")
def script():
    """docs/parameter_table.py imported as a module (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("parameter_table", PROJECT_ROOT / "docs" / "parameter_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows(script):
    return {row.name: row for row in script.count_catalogue()}


def trainable_count(model: TimeLLM) -> int:
    return sum(parameter.numel() for parameter in model.trainable_parameters())


def test_the_committed_tables_are_what_the_script_produces(script, rows):
    committed = script.committed_block(DOC.read_text(encoding="utf-8"))
    regenerated = script.render_tables(list(rows.values()))
    assert committed == regenerated, "docs/how-it-works.md §6 is stale: run .venv/bin/python docs/parameter_table.py"


def test_every_catalogue_backbone_has_a_row(script, rows):
    assert list(rows) == list(CATALOGUE)
    block = script.committed_block(DOC.read_text(encoding="utf-8"))
    for name in CATALOGUE:
        assert block.count(f"`{name}`") == 2, name  # one row in each table


def test_counts_equal_a_timellm_on_a_loaded_tiny_backbone(script, rows):
    # The production loader, on the CPU: the table's row must be this model's own numel() sums.
    backbone = load_backbone(BackboneConfig(name="tiny-llama", llm_layers=4), device="cpu")
    model = TimeLLM(script.SEED_MODEL, backbone)
    row = rows["tiny-llama"]
    assert trainable_count(model) == row.trainable
    assert sum(parameter.numel() for parameter in backbone.model.parameters()) == row.frozen_kept
    assert (row.vocab_size, row.hidden_size) == (backbone.vocab_size, backbone.hidden_size)


def test_smollm2_trainable_count_on_a_real_sized_model(script, rows):
    # One LLaMA layer of SmolLM2's width and vocabulary, allocated for real on the CPU (~0.3 GB):
    # the trainable layers depend only on V and D, so this TimeLLM has exactly SmolLM2's trainable count.
    spec = CATALOGUE["smollm2-135m"]
    backbone = script.meta_backbone(spec, 1, device="cpu")
    assert (backbone.vocab_size, backbone.hidden_size) == (spec.vocab_size, spec.hidden_size)
    model = TimeLLM(script.SEED_MODEL, backbone)
    row = rows["smollm2-135m"]
    assert trainable_count(model) == row.trainable
    assert row.trainable_parts["mapping"] == spec.vocab_size * 1000 + 1000  # Linear(V -> S), with bias


def test_frozen_counts_follow_the_catalogue(rows):
    for name, row in rows.items():
        spec = CATALOGUE[name]
        assert row.kept_layers == min(6, spec.num_layers)
        if spec.params is not None and spec.family != "bert":  # BERT's published count includes its pooler
            assert row.frozen_all == spec.params, name
        assert row.frozen_kept <= row.frozen_all
        assert row.frozen_bytes["fp32"] == 4 * row.frozen_kept
        assert row.frozen_bytes["bf16"] == 2 * row.frozen_kept
        assert row.frozen_bytes["4bit"] < row.frozen_bytes["bf16"]


def test_markers_are_required_and_replacement_is_idempotent(script):
    text = f"before\n{script.BEGIN}\nold table\n{script.END}\nafter\n"
    once = script.replace_between_markers(text, "| new |")
    assert once == f"before\n{script.BEGIN}\n| new |\n{script.END}\nafter\n"
    assert script.replace_between_markers(once, "| new |") == once
    assert script.committed_block(once) == "| new |"
    with pytest.raises(ValueError, match="markers"):
        script.replace_between_markers("no markers here", "| new |")


def test_sections_keep_their_numbers_and_the_doc_is_linked():
    text = DOC.read_text(encoding="utf-8")
    numbers = [int(number) for number in re.findall(r"^## (\d+)\. ", text, flags=re.MULTILINE)]
    assert numbers == list(range(1, 7))
    assert "```mermaid\nflowchart" in text
    assert "docs/how-it-works.md" in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/how-it-works.md" in (PROJECT_ROOT / "pages" / "home.py").read_text(encoding="utf-8")
