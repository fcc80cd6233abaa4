"""An independent JOSE implementation (PyJWT + cryptography) as a peer.

verify: stdin {"jwks": {...}, "tokens": [...]} -> stdout [claims | {"error": ...}]
        Each token is checked with only the published JWK Set.
mint:   stdin {"pem": "...", "kid": null | "...", "claims": [...]} -> stdout [token]
"""
import json
import sys

import jwt


def verify(request):
    keys = jwt.PyJWKSet.from_dict(request["jwks"])
    out = []
    for token in request["tokens"]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
            if not candidates:
                raise jwt.InvalidKeyError("no key for kid")
            claims = jwt.decode(token, key=candidates[0], algorithms=["EdDSA"], options={"require": ["exp"]})
            out.append(claims)
        except jwt.PyJWTError as error:
            out.append({"error": type(error).__name__})
    return out


def mint(request):
    headers = {"typ": "JWT"}
    if request.get("kid"):
        headers["kid"] = request["kid"]
    return [jwt.encode(claims, request["pem"], algorithm="EdDSA", headers=headers) for claims in request["claims"]]


if __name__ == "__main__":
    request = json.load(sys.stdin)
    print(json.dumps({"verify": verify, "mint": mint}[sys.argv[1]](request)))
