"""Repos served by the test Hub, and fixtures that point auditor at it.

Every repo is built here by code: a tiny Llama-shaped model with two commits
(a branch, a tag and a PR ref), a lineage of base models, a gated repo, a
cycle of base models, and a repo the Hub's own scanner flags.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from tests.builders import TINY_CONFIG, safetensors_bytes
from tests.hubserver import HubFile, HubRepo, HubServer

TOKEN = "hf_TESTtokenNEVERprintedQ7x9"


def commit(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


C1 = commit("tiny-v1")
C2 = commit("tiny-v2")

WEIGHTS = safetensors_bytes({
    "model.embed_tokens.weight": ("F32", [32, 16]),
    "lm_head.weight": ("F32", [32, 16]),
}, {"format": "pt"})


def card(base: str | list[str] | None = None, relation: str | None = None) -> str:
    lines = ["---", "license: apache-2.0"]
    if isinstance(base, str):
        lines.append(f"base_model: {base}")
    elif base:
        lines += ["base_model:"] + [f"- {b}" for b in base]
    if relation:
        lines.append(f"base_model_relation: {relation}")
    return "\n".join([*lines, "---", "", "# a test model", ""])


def card_data(base: str | list[str] | None = None, relation: str | None = None) -> dict:
    data: dict = {"license": "apache-2.0"}
    if base:
        data["base_model"] = base
    if relation:
        data["base_model_relation"] = relation
    return data


def tiny_files(config_extra: dict | None = None) -> list[HubFile]:
    config = {**TINY_CONFIG, **(config_extra or {})}
    return [
        HubFile("model.safetensors", WEIGHTS),
        HubFile("config.json", (json.dumps(config, indent=2) + "\n").encode()),
        HubFile("generation_config.json", b'{"bos_token_id": 1, "eos_token_id": 2}\n'),
        HubFile("README.md", card("base-org/mid", "finetune").encode()),
    ]


def tiny_repo(**kwargs) -> HubRepo:
    return HubRepo(
        "org/tiny",
        {C1: tiny_files(), C2: tiny_files({"torch_dtype": "bfloat16"})},
        refs={"main": C2, "v1.0": C1, "refs/pr/1": C2},
        card_data=card_data("base-org/mid", "finetune"),
        **kwargs,
    )


def simple_repo(repo_id: str, base: str | None = None, **kwargs) -> HubRepo:
    sha = commit(repo_id)
    files = [HubFile("config.json", b'{"model_type": "llama"}\n'),
             HubFile("README.md", card(base).encode())]
    return HubRepo(repo_id, {sha: files}, refs={"main": sha}, card_data=card_data(base),
                   **kwargs)


def standard_repos() -> list[HubRepo]:
    return [
        tiny_repo(),
        simple_repo("base-org/mid", "root-org/root", author="Mid Labs"),
        simple_repo("root-org/root", author="Root Labs"),
        simple_repo("org/gated", gated="manual"),
        simple_repo("cyc/a", "cyc/b"),
        simple_repo("cyc/b", "cyc/a"),
    ]


def allow_network(monkeypatch) -> None:
    """Let this test's client reach a server on 127.0.0.1 (conftest makes every test offline).

    The client reads HF_HUB_OFFLINE once, when first imported; if that import happened
    inside an earlier test (whose environment is offline), it is switched back on here.
    """
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def serve(monkeypatch) -> Iterator:
    """`with serve(repos) as hub:` — a running Hub; HF_ENDPOINT points at it, network allowed."""
    servers: list[HubServer] = []

    def start(repos: list[HubRepo] | None = None) -> HubServer:
        hub = HubServer(standard_repos() if repos is None else repos, tokens=(TOKEN,))
        hub.__enter__()
        servers.append(hub)
        allow_network(monkeypatch)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        return hub

    yield start
    for hub in servers:
        hub.__exit__(None, None, None)


def findings(report: dict, rule: str) -> list[dict]:
    """Every finding with this rule id in a JSON report (model- and file-level)."""
    out = []
    for model in report["models"]:
        out += [f for f in model["findings"] if f["rule"] == rule]
        for f in model["files"]:
            out += [x for x in f["findings"] if x["rule"] == rule]
    return out


def files_by_path(report: dict, model: int = 0) -> dict[str, dict]:
    return {f["path"]: f for f in report["models"][model]["files"]}
