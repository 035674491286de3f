"""Signed products: each FITS product's provenance is signed when it is made.

Every user has an Ed25519 key pair in ``<CTANB_HOME>/keys`` (made on first use; the
private key is readable by its owner only). When a step writes a product, ctanb signs

    ``ctanb-provenance-v2`` · the product's entity id · the sha256 of its whole content
    (every HDU but PROVENANCE) · the sha256 of its PROVENANCE document · the sha256 of
    the PROVENANCE HDU's header (its signature cards left out) · the signer's name

and writes the signature, the public key and the signer's name into the header of the
PROVENANCE HDU. ``verify`` checks that signature, so a copy mailed to a colleague can be
checked without the maker's store, and a record rewritten by anyone without the maker's
private key fails. A signature proves who signed only to someone who trusts that public
key: your own key is trusted; others are trusted with ``ctanb prov trust`` (their
``ctanb prov key`` output, or a key an archive publishes).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .._errors import ProvenanceError

__all__ = [
    "Signature",
    "check_signature",
    "public_key",
    "sign_product",
    "trust_key",
    "trusted_keys",
]

ALGORITHM = "ed25519"
_PREFIX = b"ctanb-provenance-v2"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Signature:
    """A product's signature: algorithm, signer's public key (hex), signature (hex), name."""

    algorithm: str
    public_key: str
    value: str
    signer: str = ""

    @property
    def fingerprint(self) -> str:
        """A short name of the public key: its first 16 hex digits (as ``ctanb prov key``
        prints it)."""
        return self.public_key[:16]


def _keys_dir() -> Path:
    from .._settings import home_dir

    return home_dir() / "keys"


def clean_signer(name: str) -> str:
    """The signer's name as a FITS card holds it (printable ASCII, 60 characters)."""
    return "".join(c for c in name if " " <= c <= "~")[:60].rstrip()


def _message(
    entity_id: str, content_sha256: str, document: bytes, header_sha256: str, signer: str
) -> bytes:
    return b"\n".join(
        [
            _PREFIX,
            entity_id.encode(),
            content_sha256.encode(),
            hashlib.sha256(document).hexdigest().encode(),
            header_sha256.encode(),
            clean_signer(signer).encode(),
        ]
    )


def _private_key():  # -> Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = _keys_dir() / "provenance_ed25519.pem"
    if path.is_file():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise ProvenanceError(
                f"the signing key {path} is damaged; move it away to make a new one"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ProvenanceError(f"the signing key {path} is not an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created owner-only from the start (no window in which others could read it).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def public_key() -> str:
    """This user's public signing key (made on first use).

    Returns
    -------
    str
        64 hex digits, to give to colleagues who verify your products.
    """
    return _public_hex(_private_key())


def _public_hex(key) -> str:  # key: Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def sign_product(
    entity_id: str, content_sha256: str, document: bytes, header_sha256: str
) -> Signature:
    """Sign a product (its entity id, content hash, provenance document and header)."""
    from ._agents import current_user

    signer = clean_signer(current_user())
    key = _private_key()
    value = key.sign(_message(entity_id, content_sha256, document, header_sha256, signer)).hex()
    return Signature(ALGORITHM, _public_hex(key), value, signer)


def trusted_keys() -> dict[str, str]:
    """Public keys whose signatures ``verify`` accepts: ``{hex key: name}`` (own key first)."""
    keys = {public_key(): "you"}
    folder = _keys_dir() / "trusted"
    for path in sorted(folder.glob("*.pub")) if folder.is_dir() else []:
        text = path.read_text(errors="replace").split()
        if text and _HEX64.match(text[0].lower()):
            keys.setdefault(text[0].lower(), " ".join(text[1:]) or path.stem)
    return keys


def _usable_key(text: str) -> bool:
    """64 hex digits that decode to an Ed25519 public key other than a degenerate one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not _HEX64.match(text):
        return False
    raw = bytes.fromhex(text)
    if len(set(raw)) < 4:  # all zeros, 00…01 and the like: small-order points, not keys
        return False
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return False
    return True


def trust_key(key: str, name: str = "") -> Path:
    """Trust signatures made with *key*.

    Parameters
    ----------
    key : str
        64 hex digits, or a file whose first word is one.
    name : str
        Whose key it is (shown when a product signed with it is verified).

    Returns
    -------
    Path
        The file that now holds the trusted key (one file per key).

    Raises
    ------
    ProvenanceError
        *key* is not a usable public key, or names a file that does not exist or
        does not start with one.
    """
    text = key.strip()
    if not _HEX64.match(text.lower()):
        path = Path(text).expanduser()
        if "/" in text or path.suffix:
            if not path.is_file():
                raise ProvenanceError(f"no key file {path}")
            words = path.read_text(errors="replace").split()
            text = words[0] if words else ""
            name = name or " ".join(words[1:2])
    text = text.lower()
    if not _usable_key(text):
        raise ProvenanceError(
            "not a usable public key: give the 64 hexadecimal digits that "
            "'ctanb prov key' prints (or a file holding them)"
        )
    folder = _keys_dir() / "trusted"
    folder.mkdir(parents=True, exist_ok=True)
    clean = re.sub(r"[^\w .@-]+", "", name)[:80]
    path = folder / f"{text[:16]}.pub"
    path.write_text(f"{text} {clean}".strip() + "\n")
    return path


def check_signature(
    signature: Signature,
    entity_id: str,
    content_sha256: str,
    document: bytes,
    header_sha256: str,
) -> str | None:
    """None when *signature* is valid and made by a trusted key, else what is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if signature.algorithm != ALGORITHM:
        return f"signed with an unknown algorithm {signature.algorithm!r}"
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(signature.public_key))
        message = _message(entity_id, content_sha256, document, header_sha256, signature.signer)
        key.verify(bytes.fromhex(signature.value), message)
    except (ValueError, InvalidSignature):
        return "its signature does not match its content and provenance (altered after signing)"
    if signature.public_key not in trusted_keys():
        who = f" by {signature.signer!r}" if signature.signer else ""
        return (
            f"signed{who} with key {signature.fingerprint}…, which you do not trust; "
            f"if it is theirs: ctanb prov trust {signature.public_key}"
        )
    return None


def signer_name(signature: Signature) -> str:
    """Who a trusted signature is from, in words (the name given to ``trust``)."""
    name = trusted_keys().get(signature.public_key, "")
    return f"{name} (key {signature.fingerprint}…)" if name else f"key {signature.fingerprint}…"
