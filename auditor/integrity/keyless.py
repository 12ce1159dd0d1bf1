"""Sigstore (keyless) bundles, verified offline with the `sigstore` library.

Transparency-log and certificate checks are never hand-rolled: the optional
`sigstore` extra does them against a trust configuration the user supplies
(a client trust config holding `trustedRoot`, or a bare trusted root). When
the extra is missing, the result says the signature was not checked.
"""

from __future__ import annotations

import json
from pathlib import Path

from auditor.integrity import dsse

# Why a bundle did not verify: (problem kind, message), in the vocabulary of signing.Problem.
Failure = tuple[str, str]


def verify_keyless(
    bundle: dsse.Bundle, trust_config: Path, identity: str, issuer: str
) -> Failure | None:
    """None when the bundle verifies for `identity`/`issuer` under `trust_config`.

    Takes plain values, not the signing module's types, so that this optional
    path depends on nothing above it.
    """
    try:
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import Bundle, ClientTrustConfig, TrustedRoot
        from sigstore.verify import Verifier, policy
    except ImportError:
        return ("unchecked", "Sigstore bundle not checked: install the extra "
                "`pip install 'model-auditor[sigstore]'`")
    try:
        doc = json.loads(trust_config.read_text())
    except (OSError, ValueError) as exc:
        return ("certificate", f"{trust_config}: unreadable trust config: {exc}")
    try:
        if isinstance(doc, dict) and "trustedRoot" in doc:
            trusted_root = ClientTrustConfig.from_json(json.dumps(doc)).trusted_root
        else:
            trusted_root = TrustedRoot.from_file(str(trust_config))
        verifier = Verifier(trusted_root=trusted_root)
        sig_bundle = Bundle.from_json(bundle.raw)
        expected = policy.Identity(identity=identity, issuer=issuer)
        payload_type, payload = verifier.verify_dsse(sig_bundle, expected)
    except SigstoreError as exc:
        return ("identity" if "SAN" in str(exc) or "issuer" in str(exc).lower()
                else "certificate", f"Sigstore verification failed: {exc}")
    except (ValueError, KeyError) as exc:
        return ("certificate", f"{trust_config}: not a Sigstore trust config: {exc}")
    if payload != bundle.payload or payload_type != bundle.payload_type:
        return ("bundle", "Sigstore verified a different payload than the envelope holds")
    return None

