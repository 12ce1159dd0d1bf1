import json
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny-model"


def test_bundled_example_scans_clean(run_cli):
    run = run_cli("scan", EXAMPLE, "--format", "json")
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert doc["verdict"] == "pass"
    files = {f["path"]: f for f in doc["models"][0]["files"]}
    assert files["model.safetensors"]["coverage"] == "scanned"
    assert files["model.safetensors"]["facts"]["tensors"] == 3


def test_bundled_example_matches_its_builder(tmp_path):
    from tests.builders import write_tiny_model

    made = write_tiny_model(tmp_path / "m")
    for f in made.iterdir():
        assert (EXAMPLE / f.name).read_bytes() == f.read_bytes(), f.name
