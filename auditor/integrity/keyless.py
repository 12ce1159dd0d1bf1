"""Sigstore (keyless) bundles, verified offline with the `sigstore` library.

Transparency-log and certificate checks are never hand-rolled: the optional
`sigstore` extra does them against a trust configuration the user supplies
(a client trust config holding `trustedRoot`, or a bare trusted root). When
the extra is missing, the result says the signature was not checked.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from auditor.integrity import dsse

if TYPE_CHECKING:
    from auditor.integrity.signing import SigstoreTrust, _Check


def verify_keyless(bundle: dsse.Bundle, trust: SigstoreTrust, check: _Check) -> bool:
    try:
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import Bundle, ClientTrustConfig, TrustedRoot
        from sigstore.verify import Verifier, policy
    except ImportError:
        check.fail("unchecked", "Sigstore bundle not checked: install the extra "
                   "`pip install 'model-auditor[sigstore]'`")
        return False
    try:
        doc = json.loads(trust.trust_config.read_text())
    except (OSError, ValueError) as exc:
        check.fail("certificate", f"{trust.trust_config}: unreadable trust config: {exc}")
        return False
    try:
        if isinstance(doc, dict) and "trustedRoot" in doc:
            trusted_root = ClientTrustConfig.from_json(json.dumps(doc)).trusted_root
        else:
            trusted_root = TrustedRoot.from_file(str(trust.trust_config))
        verifier = Verifier(trusted_root=trusted_root)
        sig_bundle = Bundle.from_json(bundle.raw)
        identity = policy.Identity(identity=trust.identity, issuer=trust.issuer)
        payload_type, payload = verifier.verify_dsse(sig_bundle, identity)
    except SigstoreError as exc:
        check.fail("identity" if "SAN" in str(exc) or "issuer" in str(exc).lower()
                   else "certificate", f"Sigstore verification failed: {exc}")
        return False
    except (ValueError, KeyError) as exc:
        check.fail("certificate", f"{trust.trust_config}: not a Sigstore trust config: {exc}")
        return False
    if payload != bundle.payload or payload_type != bundle.payload_type:
        check.fail("bundle", "Sigstore verified a different payload than the envelope holds")
        return False
    return True

