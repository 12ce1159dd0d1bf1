"""Code and text that a loader reads: Python sources, Jinja chat templates, JSON and YAML
configs, the model card, tokenizer files."""
