"""Deploy-time admission: a model runs only if an attestation of its digest verifies and
the attested SBOM passes policy (the Kubernetes webhook and `auditor verify-attestation`)."""
