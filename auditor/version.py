"""The release number, on its own so that every room can name it without importing the
package's public API (`auditor/__init__.py`, which sits above everything)."""

__version__ = "0.1.0"
