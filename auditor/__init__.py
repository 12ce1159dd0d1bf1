"""auditor: may these weights run here?

Static audit of model artifacts: weight-format safety, hashes, signatures,
provenance, CycloneDX ML-BOMs and policy gates. Nothing scanned is ever
executed, unpickled, imported, rendered or loaded.
"""

__version__ = "0.1.0"
