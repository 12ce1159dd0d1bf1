"""The OCI distribution client: references, manifests, verified blobs, referrers.

It moves bytes and verifies digests; it never judges and never scans. Its
one third-party import (`httpx`) happens inside `client.Registry`, so naming
this room costs nothing at start-up.
"""
