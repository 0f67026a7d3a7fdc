"""SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) as MongoDB uses them:
stored credentials {iterationCount, salt, storedKey, serverKey}, the server
side of saslStart/saslContinue, the client side members use to reach each
other, and SASLprep (RFC 4013). Never logs or returns a password.
"""
import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata

MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256")
_HASH = {"SCRAM-SHA-1": hashlib.sha1, "SCRAM-SHA-256": hashlib.sha256}
_HASH_NAME = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}


class SCRAMError(Exception):
    """Authentication failed; the message is safe to log (no secrets)."""


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _unb64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise SCRAMError("invalid base64 in SCRAM message") from None


def saslprep(text, allow_unassigned=False):
    """RFC 4013 SASLprep: map, NFKC-normalise, refuse prohibited and bidi-mixed text."""
    if all(0x20 < ord(c) < 0x7F for c in text):
        return text
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    normalized = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not normalized:
        return normalized
    prohibited = (stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22,
                  stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
                  stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
                  stringprep.in_table_c9)
    for c in normalized:
        if any(check(c) for check in prohibited):
            raise ValueError("SASLprep: prohibited character")
        if not allow_unassigned and stringprep.in_table_a1(c):
            raise ValueError("SASLprep: unassigned code point")
    if any(stringprep.in_table_d1(c) for c in normalized):
        if any(stringprep.in_table_d2(c) for c in normalized):
            raise ValueError("SASLprep: mixes right-to-left and left-to-right text")
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            raise ValueError("SASLprep: right-to-left text must start and end with an RTL character")
    return normalized


def prepared_password(mechanism, user, password):
    """The secret each mechanism salts: SHA-1 uses MongoDB's MD5 digest, SHA-256 SASLprep."""
    if mechanism == "SCRAM-SHA-1":
        return hashlib.md5(f"{user}:mongo:{password}".encode("utf-8")).hexdigest().encode("ascii")
    return saslprep(password).encode("utf-8")


def _keys(mechanism, secret, salt, iterations):
    salted = hashlib.pbkdf2_hmac(_HASH_NAME[mechanism], secret, salt, iterations)
    h = _HASH[mechanism]
    client_key = hmac.new(salted, b"Client Key", h).digest()
    server_key = hmac.new(salted, b"Server Key", h).digest()
    return salted, client_key, h(client_key).digest(), server_key


def make_credentials(mechanism, user, password, iterations):
    """Stored credentials as mongod keeps them in admin.system.users."""
    salt = os.urandom(_HASH[mechanism]().digest_size - 4)  # 16 bytes for SHA-1, 28 for SHA-256
    _, _, stored_key, server_key = _keys(mechanism, prepared_password(mechanism, user, password), salt, iterations)
    return {"iterationCount": int(iterations), "salt": _b64(salt),
            "storedKey": _b64(stored_key), "serverKey": _b64(server_key)}


def _decode_name(text):
    out, i = [], 0
    while i < len(text):
        if text[i] == "=":
            code = text[i + 1:i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise SCRAMError("invalid escape in SCRAM user name")
            i += 3
        elif text[i] == ",":
            raise SCRAMError("unescaped comma in SCRAM user name")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _encode_name(name):
    return name.replace("=", "=3D").replace(",", "=2C")


def _attributes(text):
    attrs = {}
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=":
            raise SCRAMError("malformed SCRAM attribute")
        attrs.setdefault(part[0], part[2:])
    return attrs


def parse_client_first(payload):
    """(gs2 header, client-first-bare, user name, client nonce) of a client-first message."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SCRAMError("SCRAM client-first message is not UTF-8") from None
    parts = text.split(",", 2)
    if len(parts) != 3:
        raise SCRAMError("malformed SCRAM client-first message")
    cbind, authzid, bare = parts
    if cbind.startswith("p="):
        raise SCRAMError("Server does not support channel binding")
    if cbind not in ("n", "y"):
        raise SCRAMError("invalid SCRAM gs2 channel binding flag")
    if authzid:
        raise SCRAMError("SCRAM authorization identities are not supported")
    if bare.startswith("m="):
        raise SCRAMError("SCRAM mandatory extensions are not supported")
    attrs = _attributes(bare)
    if "n" not in attrs or "r" not in attrs or not attrs["r"]:
        raise SCRAMError("SCRAM client-first message lacks n= or r=")
    return f"{cbind},{authzid},", bare, _decode_name(attrs["n"]), attrs["r"]


class ServerConversation:
    """One saslStart..saslContinue exchange on the server side."""

    def __init__(self, mechanism, payload):
        if mechanism not in MECHANISMS:
            raise SCRAMError(f"unsupported mechanism {mechanism}")
        self.mechanism = mechanism
        self.gs2, self.client_first_bare, self.user, self.client_nonce = parse_client_first(payload)
        self.credentials = None
        self.server_first = None
        self.step = 1
        self.done = False

    def first(self, credentials):
        """The server-first message for these stored credentials."""
        self.credentials = credentials
        self.nonce = self.client_nonce + _b64(os.urandom(24))
        self.server_first = f"r={self.nonce},s={credentials['salt']},i={int(credentials['iterationCount'])}"
        self.step = 2
        return self.server_first.encode("ascii")

    def final(self, payload):
        """Check the client proof; return server-final (v=...) or raise SCRAMError."""
        if self.step != 2:
            raise SCRAMError("SCRAM conversation is not waiting for a client proof")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise SCRAMError("SCRAM client-final message is not UTF-8") from None
        without_proof, sep, proof_part = text.rpartition(",p=")
        if not sep:
            raise SCRAMError("SCRAM client-final message has no proof")
        attrs = _attributes(without_proof)
        if _unb64(attrs.get("c", "")) != self.gs2.encode("utf-8"):
            raise SCRAMError("SCRAM channel binding does not match")
        if attrs.get("r") != self.nonce:
            raise SCRAMError("SCRAM nonce mismatch")
        proof = _unb64(proof_part)
        h = _HASH[self.mechanism]
        stored_key = _unb64(self.credentials["storedKey"])
        server_key = _unb64(self.credentials["serverKey"])
        auth_message = ",".join((self.client_first_bare, self.server_first, without_proof)).encode("utf-8")
        signature = hmac.new(stored_key, auth_message, h).digest()
        if len(proof) != len(signature):
            raise SCRAMError("SCRAM proof has the wrong length")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(h(client_key).digest(), stored_key):
            raise SCRAMError("SCRAM proof does not match")
        self.step = 3
        return ("v=" + _b64(hmac.new(server_key, auth_message, h).digest())).encode("ascii")


class ClientConversation:
    """The client side, used by one member to authenticate to another."""

    def __init__(self, mechanism, user, password):
        self.mechanism = mechanism
        self.user = user
        self.secret = prepared_password(mechanism, user, password)
        self.nonce = _b64(os.urandom(24))
        self.first_bare = f"n={_encode_name(user)},r={self.nonce}"

    def first(self):
        return ("n,," + self.first_bare).encode("utf-8")

    def final(self, server_first):
        text = server_first.decode("utf-8")
        attrs = _attributes(text)
        if not attrs.get("r", "").startswith(self.nonce):
            raise SCRAMError("server nonce does not extend the client nonce")
        salt = _unb64(attrs.get("s", ""))
        iterations = int(attrs.get("i", "0"))
        if iterations < 4096:
            raise SCRAMError("server asked for fewer than 4096 iterations")
        salted, client_key, stored_key, server_key = _keys(self.mechanism, self.secret, salt, iterations)
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = ",".join((self.first_bare, text, without_proof)).encode("utf-8")
        h = _HASH[self.mechanism]
        signature = hmac.new(stored_key, auth_message, h).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.expected_server = "v=" + _b64(hmac.new(server_key, auth_message, h).digest())
        return f"{without_proof},p={_b64(proof)}".encode("ascii")

    def verify(self, server_final):
        if server_final.decode("utf-8", "replace") != self.expected_server:
            raise SCRAMError("server signature does not verify")
