//! The hostile-input corpus: one row per attack, each with the
//! exact SPEC §4 outcome it must get.
//!
//! Every row is sent to a service holding two live sessions. After each row
//! the ledger must be exactly as before (no session created, consumed or
//! revoked), and at the end both legitimate sessions must still refresh.
//!
//! Rows marked "authentic" are signed with the service's real key (the
//! test holds its seed), so they get past the signature and probe the claim
//! checks; they reuse Alice's real token ids wherever that makes a lenient
//! parser's mistake visible as a rotation of her session.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code: a panic is a test failure")]

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};
use token_refresh::token::DecodeError;
use token_refresh::{
    Error, Policy, Reply, VerificationKey, error::BadRequest, error::Unauthorized, error::Unprocessable,
    keys::Algorithm,
};
use token_refresh_test_support::encoding::{b64, unb64};
use token_refresh_test_support::flow::TwoSessions;
use token_refresh_test_support::keys::{SEED, signing_key, spki_pem};
use token_refresh_test_support::tokens::{
    HEADER, ID1, ID2, add_group_order_to_s, mint, mint_with, payload, refresh_json, segments, sign_input,
    with_trailing_bit,
};
use token_refresh_test_support::users::{ALICE, BOB};
use token_refresh_test_support::{NOW, ready};

/// What a row must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Bad(BadRequest),
    Unauth(Unauthorized),
    NotFound,
    Unproc(Unprocessable),
}

impl Want {
    fn code(self) -> u16 {
        match self {
            Self::Bad(_) => 400,
            Self::Unauth(_) => 401,
            Self::NotFound => 404,
            Self::Unproc(_) => 422,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Bad(_) => "BAD_REQUEST",
            Self::Unauth(_) => "UNAUTHORIZED",
            Self::NotFound => "NOT_FOUND",
            Self::Unproc(_) => "UNPROCESSABLE_ENTITY",
        }
    }

    fn of(error: &Error) -> Option<Self> {
        match error {
            Error::BadRequest(d) => Some(Self::Bad(*d)),
            Error::Unauthorized(d) => Some(Self::Unauth(*d)),
            Error::UserNotFound => Some(Self::NotFound),
            Error::Unprocessable(d) => Some(Self::Unproc(*d)),
            _ => None,
        }
    }
}

/// Which entry point a row is sent to.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// `refresh` with the default policy (`alg` = `EdDSA`).
    Refresh,
    /// `refresh` with a policy that opted in to `alg` = `Ed25519`.
    RefreshEd25519,
    /// `verify_access`.
    Access,
}

struct Case {
    attack: String,
    target: Target,
    header: Option<Vec<u8>>,
    want: Want,
}

use Target::{Access, Refresh, RefreshEd25519};
use Want::{Bad, NotFound, Unauth, Unproc};

const MALFORMED: Want = Unauth(Unauthorized::Token(DecodeError::Malformed));
const NOT_JSON: Want = Unauth(Unauthorized::Token(DecodeError::NotJson));
const ALG: Want = Unauth(Unauthorized::Token(DecodeError::Algorithm));
const TYP: Want = Unauth(Unauthorized::Token(DecodeError::TokenType));
const HEADER_REFUSED: Want = Unauth(Unauthorized::Token(DecodeError::Header));
const UNKNOWN_KID: Want = Unauth(Unauthorized::Token(DecodeError::UnknownKey));
const BAD_SIG: Want = Unauth(Unauthorized::Token(DecodeError::Signature));
const CLAIMS: Want = Unproc(Unprocessable::Claims);

fn bearer(token: &str) -> Option<Vec<u8>> {
    Some(format!("Bearer {token}").into_bytes())
}

fn q(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// A key the attacker owns.
fn attacker_key() -> SigningKey {
    SigningKey::from_bytes(&[0xa7; 32])
}

/// A token with `header`, signed by the attacker: 86 signature characters,
/// so size checks pass and the header check is what decides.
fn forged(header: &str, payload: &str) -> String {
    mint_with(&attacker_key(), header, payload)
}

/// A token whose 64-byte "signature" is `signature`.
fn with_signature(header: &str, payload: &str, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
}

fn hs256(key: &[u8], input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hs512(key: &[u8], input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// HMAC "signed" token whose MAC key is our *public* key: the classic
/// RS256→HS256 confusion, where a verifier that lets the token pick the
/// algorithm uses the public key as an HMAC secret.
fn hmac_token(alg: &str, key: &[u8], payload: &str) -> String {
    let input = format!("{}.{}", b64(format!(r#"{{"typ":"JWT","alg":"{alg}"}}"#)), b64(payload));
    let mac = if alg == "HS256" { hs256(key, &input) } else { hs512(key, &input) };
    format!("{input}.{}", b64(mac))
}

/// UTF-16LE bytes of `text`, with a byte-order mark.
fn utf16(text: &str) -> Vec<u8> {
    let mut out = vec![0xff, 0xfe];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[expect(clippy::too_many_lines, reason = "the corpus is one table, one row per attack")]
fn corpus(fx: &TwoSessions) -> Vec<Case> {
    let mut rows = Vec::new();
    let mut row = |attack: &str, target: Target, header: Option<Vec<u8>>, want: Want| {
        rows.push(Case { attack: attack.to_owned(), target, header, want });
    };

    // Alice's real claims: a lenient parser that accepted a malformed
    // variant of them would rotate her session, and the ledger check would
    // see it.
    let alice = payload(&fx.alice.refresh_token);
    let a_jti = q(alice["jti"].as_str().expect("jti"));
    let a_acjti = q(alice["acjti"].as_str().expect("acjti"));
    let a_exp = alice["exp"].as_i64().expect("exp").to_string();
    let a_sub = q(ALICE);
    let alice_claims = refresh_json(&a_sub, &a_acjti, &a_exp, &a_jti);
    let authentic = |payload: &str| bearer(&mint(payload));
    let [real_h, real_p, real_s] = segments(&fx.alice.refresh_token);
    let real_sig: [u8; 64] = unb64(&real_s).try_into().expect("64 bytes");
    let our_public = signing_key().verifying_key().to_bytes();
    let attacker_sig = || b64(attacker_key().sign(b"x").to_bytes());

    // ---- Step 1: the header itself (400) --------------------------------
    row("no Authorization header", Refresh, None, Bad(BadRequest::MissingHeader));
    row("empty header", Refresh, Some(vec![]), Bad(BadRequest::EmptyHeader));
    row("header of spaces only", Refresh, Some(b"     ".to_vec()), Bad(BadRequest::EmptyHeader));
    row("1 MiB header", Refresh, Some(vec![b'A'; 1 << 20]), Bad(BadRequest::HeaderTooLong));
    row("8 KiB + 1 header", Refresh, Some(vec![b'A'; 8 * 1024 + 1]), Bad(BadRequest::HeaderTooLong));
    let mib = "A".repeat(1 << 20);
    row("1 MiB header segment", Refresh, bearer(&format!("{mib}.{real_p}.{real_s}")), Bad(BadRequest::HeaderTooLong));
    row("1 MiB payload segment", Refresh, bearer(&format!("{real_h}.{mib}.{real_s}")), Bad(BadRequest::HeaderTooLong));
    row(
        "1 MiB signature segment",
        Refresh,
        bearer(&format!("{real_h}.{real_p}.{mib}")),
        Bad(BadRequest::HeaderTooLong),
    );
    row(
        "10 KiB kid (header over 8 KiB)",
        Refresh,
        bearer(&forged(&format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, "k".repeat(10 * 1024)), &alice_claims)),
        Bad(BadRequest::HeaderTooLong),
    );
    row(
        "1 MiB sub, authentic (header over 8 KiB)",
        Refresh,
        authentic(&refresh_json(&q(&"a".repeat(1 << 20)), &a_acjti, &a_exp, &a_jti)),
        Bad(BadRequest::HeaderTooLong),
    );
    let token = fx.alice.refresh_token.clone();
    let (left, right) = token.split_at(40);
    row("newline inside the token", Refresh, bearer(&format!("{left}\n{right}")), Bad(BadRequest::HeaderNotAscii));
    row("CRLF header injection", Refresh, bearer(&format!("{token}\r\nX-Admin: 1")), Bad(BadRequest::HeaderNotAscii));
    row("tab inside the token", Refresh, bearer(&format!("{left}\t{right}")), Bad(BadRequest::HeaderNotAscii));
    row("NUL inside the token", Refresh, bearer(&format!("{left}\0{right}")), Bad(BadRequest::HeaderNotAscii));
    row(
        "NUL after the token (C string cut)",
        Refresh,
        bearer(&format!("{token}\0junk")),
        Bad(BadRequest::HeaderNotAscii),
    );
    row("tab after Bearer", Refresh, Some(format!("Bearer\t{token}").into_bytes()), Bad(BadRequest::HeaderNotAscii));
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend_from_slice(token.as_bytes());
    row("UTF-8 BOM before the header value", Refresh, Some(bom), Bad(BadRequest::HeaderNotAscii));
    row("header value in UTF-16", Refresh, Some(utf16(&format!("Bearer {token}"))), Bad(BadRequest::HeaderNotAscii));
    row("non-ASCII (Latin-1) byte", Refresh, Some(b"Bearer \xe9".to_vec()), Bad(BadRequest::HeaderNotAscii));
    row("DEL byte", Refresh, bearer(&format!("{token}\x7f")), Bad(BadRequest::HeaderNotAscii));

    // ---- Step 2: scheme and shape (401) ---------------------------------
    row("Basic scheme", Refresh, Some(format!("Basic {token}").into_bytes()), Unauth(Unauthorized::WrongScheme));
    row("DPoP scheme", Refresh, Some(format!("DPoP {token}").into_bytes()), Unauth(Unauthorized::WrongScheme));
    row(
        "space inside a bare token",
        Refresh,
        Some(format!("{left} {right}").into_bytes()),
        Unauth(Unauthorized::WrongScheme),
    );
    row("space inside a Bearer token", Refresh, bearer(&format!("{left} {right}")), MALFORMED);
    row("Bearer Bearer <token>", Refresh, bearer(&format!("Bearer {token}")), MALFORMED);
    row("Bearer with no token", Refresh, Some(b"Bearer".to_vec()), MALFORMED);
    row("one segment", Refresh, bearer(&real_p), MALFORMED);
    row("2 segments (signature dropped)", Refresh, bearer(&format!("{real_h}.{real_p}")), MALFORMED);
    row("4 segments", Refresh, bearer(&format!("{token}.{real_s}")), MALFORMED);
    row(
        "5 segments (JWE compact shape)",
        Refresh,
        bearer(&format!("{real_h}.{real_p}.{real_p}.{real_p}.{real_s}")),
        MALFORMED,
    );
    row("all segments empty", Refresh, bearer(".."), MALFORMED);
    row("empty header segment", Refresh, bearer(&format!(".{real_p}.{real_s}")), MALFORMED);
    row("empty payload segment", Refresh, bearer(&format!("{real_h}..{real_s}")), MALFORMED);
    row("empty signature segment", Refresh, bearer(&format!("{real_h}.{real_p}.")), MALFORMED);
    row(
        "alg none, classic empty signature",
        Refresh,
        bearer(&format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&alice_claims))),
        MALFORMED,
    );
    row("signature truncated by one character", Refresh, bearer(&token[..token.len() - 1]), MALFORMED);
    row("signature truncated to 32 bytes", Refresh, bearer(&format!("{real_h}.{real_p}.{}", &real_s[..43])), MALFORMED);
    row("signature extended by one character", Refresh, bearer(&format!("{token}A")), MALFORMED);
    let mut long_sig = real_sig.to_vec();
    long_sig.extend_from_slice(&real_sig);
    row("signature doubled to 128 bytes", Refresh, bearer(&format!("{real_h}.{real_p}.{}", b64(long_sig))), MALFORMED);
    row(
        "signature with trailing zero byte",
        Refresh,
        bearer(&format!("{real_h}.{real_p}.{}", b64([&real_sig[..], &[0]].concat()))),
        MALFORMED,
    );
    row("= padding on the signature", Refresh, bearer(&format!("{token}==")), MALFORMED);
    let padded_header = format!("{}==", b64(r#"{"alg":"EdDSA","typ":"JWT" }"#));
    row("= padding on the header", Refresh, bearer(&format!("{padded_header}.{real_p}.{real_s}")), MALFORMED);
    row("= padding on the payload", Refresh, bearer(&format!("{real_h}.{real_p}=.{real_s}")), MALFORMED);
    row(
        "+ in the signature (base64, not base64url)",
        Refresh,
        bearer(&format!("{real_h}.{real_p}.+{}", &real_s[1..])),
        MALFORMED,
    );
    row(
        "/ in the payload (base64, not base64url)",
        Refresh,
        bearer(&format!("{real_h}./{}.{real_s}", &real_p[1..])),
        MALFORMED,
    );
    row(
        "+ in the header (base64, not base64url)",
        Refresh,
        bearer(&format!("+{}.{real_p}.{real_s}", &real_h[1..])),
        MALFORMED,
    );
    row("% percent-encoded token", Refresh, bearer(&token.replace('.', "%2E")), MALFORMED);
    let odd_header = b64(r#"{"alg":"EdDSA","typ":"JWT" }"#);
    row(
        "non-canonical base64: trailing bits in the header",
        Refresh,
        bearer(&format!("{}.{real_p}.{real_s}", with_trailing_bit(&odd_header))),
        MALFORMED,
    );
    row(
        "non-canonical base64: trailing bits in the signature",
        Refresh,
        bearer(&format!("{real_h}.{real_p}.{}", with_trailing_bit(&real_s))),
        MALFORMED,
    );
    // Alice's claims, padded so the segment has trailing bits, re-encoded
    // non-canonically and then signed with our key: a lenient decoder
    // would accept it and rotate Alice's session.
    let mut padded_claims = alice_claims.clone();
    while b64(&padded_claims).len().is_multiple_of(4) {
        padded_claims.insert(padded_claims.len() - 1, ' ');
    }
    let odd_payload = with_trailing_bit(&b64(&padded_claims));
    row(
        "non-canonical base64: trailing bits in the payload, authentic",
        Refresh,
        bearer(&sign_input(&signing_key(), &format!("{}.{odd_payload}", b64(HEADER)))),
        MALFORMED,
    );
    row(
        "header segment over 256 characters (170-char kid)",
        Refresh,
        bearer(&forged(&format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, "k".repeat(170)), &alice_claims)),
        MALFORMED,
    );
    row(
        "payload segment over 4096 characters, authentic",
        Refresh,
        authentic(&refresh_json(&q(&"a".repeat(3100)), &a_acjti, &a_exp, &a_jti)),
        MALFORMED,
    );
    row(
        "JWS JSON serialization instead of compact",
        Refresh,
        bearer(&format!(r#"{{"protected":"{real_h}","payload":"{real_p}","signature":"{real_s}"}}"#)),
        MALFORMED,
    );

    // ---- Step 2/3: the JOSE header is not JSON, or not ours (401) -------
    let with_header = |header: &[u8]| bearer(&format!("{}.{real_p}.{real_s}", b64(header)));
    row("header not JSON", Refresh, with_header(b"not json"), NOT_JSON);
    row("header JSON with a comment", Refresh, with_header(br#"{"alg":"EdDSA" /* hi */}"#), NOT_JSON);
    row("header JSON with a trailing comma", Refresh, with_header(br#"{"alg":"EdDSA",}"#), NOT_JSON);
    row("header JSON with NaN", Refresh, with_header(br#"{"alg":"EdDSA","typ":NaN}"#), NOT_JSON);
    row("header JSON with single quotes", Refresh, with_header(b"{'alg':'EdDSA'}"), NOT_JSON);
    row("header JSON with a BOM", Refresh, with_header("\u{feff}{\"alg\":\"EdDSA\"}".as_bytes()), NOT_JSON);
    row("header JSON in UTF-16", Refresh, with_header(&utf16(r#"{"alg":"EdDSA"}"#)), NOT_JSON);
    row("header JSON with trailing data", Refresh, with_header(br#"{"alg":"EdDSA"}{"alg":"none"}"#), NOT_JSON);
    row("header JSON with invalid UTF-8", Refresh, with_header(b"{\"alg\":\"EdDSA\xff\"}"), NOT_JSON);
    row("header JSON truncated", Refresh, with_header(br#"{"alg":"EdDSA""#), NOT_JSON);
    row("header nesting bomb (top level)", Refresh, with_header(&[b'['; 190]), HEADER_REFUSED);
    let nested = format!(r#"{{"alg":"EdDSA","typ":{}{}}}"#, "[".repeat(80), "]".repeat(80));
    row("header nesting bomb (in typ)", Refresh, with_header(nested.as_bytes()), HEADER_REFUSED);
    row("header is an array", Refresh, with_header(br#"["alg","EdDSA"]"#), HEADER_REFUSED);
    row("header is a string", Refresh, with_header(br#""EdDSA""#), HEADER_REFUSED);
    row("header is null", Refresh, with_header(b"null"), HEADER_REFUSED);
    row("header is an empty object", Refresh, with_header(b"{}"), HEADER_REFUSED);

    // alg: pinned to one name; `none` and friends never reach a key.
    let sig86 = attacker_sig();
    let alg_row = |alg: &str| bearer(&format!("{}.{real_p}.{sig86}", b64(format!(r#"{{"typ":"JWT","alg":{alg}}}"#))));
    for (attack, alg) in [
        ("alg none", r#""none""#),
        ("alg None", r#""None""#),
        ("alg NONE", r#""NONE""#),
        ("alg nOnE", r#""nOnE""#),
        ("alg empty", r#""""#),
        ("alg eddsa (lower case)", r#""eddsa""#),
        ("alg EDDSA (upper case)", r#""EDDSA""#),
        ("alg Ed25519 under an EdDSA policy", r#""Ed25519""#),
        ("alg Ed448", r#""Ed448""#),
        ("alg EdDSA with a trailing space", r#""EdDSA ""#),
        ("alg EdDSA with a trailing NUL", r#""EdDSA\u0000""#),
        ("alg RS256 label, 64-byte signature", r#""RS256""#),
        ("alg PS256 label", r#""PS256""#),
        ("alg ES256 label", r#""ES256""#),
        ("alg HS256 label, 64-byte value", r#""HS256""#),
    ] {
        row(attack, Refresh, alg_row(alg), ALG);
    }
    row("alg missing", Refresh, with_header(br#"{"typ":"JWT"}"#), HEADER_REFUSED);
    row("alg null", Refresh, with_header(br#"{"typ":"JWT","alg":null}"#), HEADER_REFUSED);
    row("alg a number", Refresh, with_header(br#"{"typ":"JWT","alg":1}"#), HEADER_REFUSED);
    row("alg an array", Refresh, with_header(br#"{"typ":"JWT","alg":["EdDSA"]}"#), HEADER_REFUSED);
    row(
        "alg ES256 psychic signature (r = s = 0)",
        Refresh,
        bearer(&with_signature(r#"{"typ":"JWT","alg":"ES256"}"#, &alice_claims, &[0; 64])),
        ALG,
    );
    row(
        "alg RS256 with a 256-byte signature",
        Refresh,
        bearer(&with_signature(r#"{"typ":"JWT","alg":"RS256"}"#, &alice_claims, &[0x42; 256])),
        MALFORMED,
    );
    // HMAC keyed with our public key, in the forms a confused verifier
    // would use: the raw 32 bytes and the PEM text.
    let pem = spki_pem(&our_public);
    for (attack, alg, key) in [
        ("HS256 keyed with our raw public key (32-byte MAC)", "HS256", our_public.to_vec()),
        ("HS256 keyed with our public key PEM (32-byte MAC)", "HS256", pem.clone().into_bytes()),
    ] {
        // A 32-byte MAC is 43 characters: the size check answers first.
        row(attack, Refresh, bearer(&hmac_token(alg, &key, &alice_claims)), MALFORMED);
    }
    for (attack, alg, key) in [
        ("HS512 keyed with our raw public key", "HS512", our_public.to_vec()),
        ("HS512 keyed with our public key PEM", "HS512", pem.into_bytes()),
    ] {
        row(attack, Refresh, bearer(&hmac_token(alg, &key, &alice_claims)), ALG);
    }
    row("our real token under an Ed25519-only policy", RefreshEd25519, bearer(&token), ALG);
    row(
        "authentic alg Ed25519 token under an EdDSA policy",
        Refresh,
        bearer(&mint_with(&signing_key(), r#"{"typ":"JWT","alg":"Ed25519"}"#, &alice_claims)),
        ALG,
    );
    row(
        "authentic alg EdDSA token under an Ed25519-only policy",
        RefreshEd25519,
        bearer(&mint_with(&signing_key(), r#"{"alg":"EdDSA"}"#, &alice_claims)),
        ALG,
    );

    // typ
    let typ_row = |typ: &str| bearer(&forged(&format!(r#"{{"typ":{typ},"alg":"EdDSA"}}"#), &alice_claims));
    for (attack, typ) in [
        ("typ jwt (lower case)", r#""jwt""#),
        ("typ at+jwt", r#""at+jwt""#),
        ("typ JOSE", r#""JOSE""#),
        ("typ JWE", r#""JWE""#),
        ("typ empty", r#""""#),
        ("typ application/jwt", r#""application/jwt""#),
    ] {
        row(attack, Refresh, typ_row(typ), TYP);
    }
    row("typ null", Refresh, typ_row("null"), HEADER_REFUSED);
    row("typ a number", Refresh, typ_row("1"), HEADER_REFUSED);

    // kid: only ever compared with configured ids; never a path or a query.
    let kid_row =
        |kid: &str| bearer(&forged(&format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":{}}}"#, q(kid)), &alice_claims));
    row("kid path traversal", Refresh, kid_row("../../../../etc/passwd"), UNKNOWN_KID);
    row("kid path traversal to /dev/null", Refresh, kid_row("/dev/null"), UNKNOWN_KID);
    row("kid SQL injection", Refresh, kid_row("' OR '1'='1' --"), UNKNOWN_KID);
    row("kid command injection", Refresh, kid_row("x; rm -rf /"), UNKNOWN_KID);
    row("kid URL", Refresh, kid_row("https://attacker.example/key"), UNKNOWN_KID);
    row("kid empty", Refresh, kid_row(""), UNKNOWN_KID);
    row("kid with a NUL", Refresh, kid_row("a\0b"), UNKNOWN_KID);
    row(
        "kid not a string",
        Refresh,
        bearer(&forged(r#"{"typ":"JWT","alg":"EdDSA","kid":7}"#, &alice_claims)),
        HEADER_REFUSED,
    );
    row(
        "unknown kid on an authentic token",
        Refresh,
        bearer(&mint_with(&signing_key(), r#"{"typ":"JWT","alg":"EdDSA","kid":"k1"}"#, &alice_claims)),
        UNKNOWN_KID,
    );

    // Members that would let the token choose its own key or semantics.
    let attacker_jwk = b64(attacker_key().verifying_key().to_bytes());
    for (attack, header) in [
        (
            "embedded jwk: the attacker's key, which really signed the token",
            format!(r#"{{"typ":"JWT","alg":"EdDSA","jwk":{{"kty":"OKP","crv":"Ed25519","x":"{attacker_jwk}"}}}}"#),
        ),
        ("jku pointing at the attacker's JWKS", r#"{"alg":"EdDSA","jku":"https://a.example/jwks.json"}"#.to_owned()),
        ("x5u pointing at the attacker's certificate", r#"{"alg":"EdDSA","x5u":"https://a.example/c.pem"}"#.to_owned()),
        ("x5c with the attacker's certificate", r#"{"alg":"EdDSA","x5c":["MIIBszCCAVmgAwIBAgIU"]}"#.to_owned()),
        ("x5t thumbprint", r#"{"alg":"EdDSA","x5t":"dGVzdA"}"#.to_owned()),
        ("crit naming exp", r#"{"alg":"EdDSA","crit":["exp"]}"#.to_owned()),
        ("crit empty", r#"{"alg":"EdDSA","crit":[]}"#.to_owned()),
        ("b64 false (unencoded payload)", r#"{"alg":"EdDSA","b64":false,"crit":["b64"]}"#.to_owned()),
        ("b64 false without crit", r#"{"alg":"EdDSA","b64":false}"#.to_owned()),
        ("zip DEF", r#"{"alg":"EdDSA","zip":"DEF"}"#.to_owned()),
        ("cty JWT (nested token)", r#"{"alg":"EdDSA","cty":"JWT"}"#.to_owned()),
        ("enc (JWE member)", r#"{"alg":"EdDSA","enc":"A256GCM"}"#.to_owned()),
        ("unknown header member", r#"{"alg":"EdDSA","admin":true}"#.to_owned()),
        ("ALG upper-case member name", r#"{"ALG":"EdDSA"}"#.to_owned()),
        ("duplicate alg: none then EdDSA", r#"{"alg":"none","alg":"EdDSA"}"#.to_owned()),
        ("duplicate alg: EdDSA then none", r#"{"alg":"EdDSA","alg":"none"}"#.to_owned()),
        ("duplicate alg: EdDSA twice", r#"{"alg":"EdDSA","alg":"EdDSA"}"#.to_owned()),
        ("duplicate typ", r#"{"typ":"JWT","typ":"JWT","alg":"EdDSA"}"#.to_owned()),
        ("duplicate kid", r#"{"alg":"EdDSA","kid":"a","kid":"b"}"#.to_owned()),
        ("duplicate alg via a unicode escape", r#"{"alg":"EdDSA","\u0061lg":"none"}"#.to_owned()),
    ] {
        row(attack, Refresh, bearer(&forged(&header, &alice_claims)), HEADER_REFUSED);
    }
    row(
        "authentic token with an embedded jwk of our own key",
        Refresh,
        bearer(&mint_with(
            &signing_key(),
            format!(r#"{{"alg":"EdDSA","jwk":{{"kty":"OKP","crv":"Ed25519","x":"{}"}}}}"#, b64(our_public)),
            &alice_claims,
        )),
        HEADER_REFUSED,
    );

    // ---- Step 4: the signature (401) ------------------------------------
    row("valid signature from another key", Refresh, bearer(&forged(HEADER, &alice_claims)), BAD_SIG);
    row("all-zero signature", Refresh, bearer(&with_signature(HEADER, &alice_claims, &[0; 64])), BAD_SIG);
    row("all-0xff signature", Refresh, bearer(&with_signature(HEADER, &alice_claims, &[0xff; 64])), BAD_SIG);
    row(
        "non-canonical S: our real signature with S + L (malleability)",
        Refresh,
        bearer(&format!("{real_h}.{real_p}.{}", b64(add_group_order_to_s(&real_sig)))),
        BAD_SIG,
    );
    let mut high_s = real_sig;
    high_s[63] |= 0xe0;
    row(
        "our real signature with S's top bits set",
        Refresh,
        bearer(&format!("{real_h}.{real_p}.{}", b64(high_s))),
        BAD_SIG,
    );
    // R = identity, S = 0 verifies every message under the identity
    // (small-order) key, which our keyring would never hold.
    let mut identity_sig = [0u8; 64];
    identity_sig[0] = 1;
    row(
        "signature valid under a small-order (identity) key",
        Refresh,
        bearer(&with_signature(HEADER, &alice_claims, &identity_sig)),
        BAD_SIG,
    );
    row(
        "our real signature, payload changed (exp extended)",
        Refresh,
        bearer(&format!("{real_h}.{}.{real_s}", b64(refresh_json(&a_sub, &a_acjti, "253402300799", &a_jti)))),
        BAD_SIG,
    );
    row(
        "our real signature, payload changed (sub swapped to Bob)",
        Refresh,
        bearer(&format!("{real_h}.{}.{real_s}", b64(refresh_json(&q(BOB), &a_acjti, &a_exp, &a_jti)))),
        BAD_SIG,
    );
    row(
        "our real signature, header changed (typ dropped)",
        Refresh,
        bearer(&format!("{}.{real_p}.{real_s}", b64(r#"{"alg":"EdDSA"}"#))),
        BAD_SIG,
    );
    row(
        "Bob's signature on Alice's payload",
        Refresh,
        bearer(&format!("{real_h}.{real_p}.{}", segments(&fx.bob.refresh_token)[2])),
        BAD_SIG,
    );
    row(
        "attacker payload nesting bomb, unsigned (never parsed)",
        Refresh,
        bearer(&forged(HEADER, &"[".repeat(3000))),
        BAD_SIG,
    );

    // ---- Step 5: authentic signature, malformed claims (422) ------------
    let claims_row = |sub: &str, acjti: &str, exp: &str, jti: &str| authentic(&refresh_json(sub, acjti, exp, jti));
    for (attack, exp) in [
        ("exp as float", format!("{a_exp}.0")),
        ("exp in exponent notation", "1.8e9".to_owned()),
        ("exp as string", q(&a_exp)),
        ("exp negative", "-1".to_owned()),
        ("exp past i64", "9223372036854775808".to_owned()),
        ("exp past u64", "18446744073709551616".to_owned()),
        ("exp past f64 (1e400)", "1e400".to_owned()),
        ("exp after year 9999", "253402300800".to_owned()),
        ("exp null", "null".to_owned()),
        ("exp true", "true".to_owned()),
        ("exp an array", format!("[{a_exp}]")),
    ] {
        row(&format!("authentic: {attack}"), Refresh, claims_row(&a_sub, &a_acjti, &exp, &a_jti), CLAIMS);
    }
    row(
        "authentic: exp missing",
        Refresh,
        authentic(&format!(r#"{{"sub":{a_sub},"acjti":{a_acjti},"jti":{a_jti}}}"#)),
        CLAIMS,
    );
    row("authentic: exp 0 (1970)", Refresh, claims_row(&a_sub, &a_acjti, "0", &a_jti), Unauth(Unauthorized::Expired));
    row(
        "authentic: exp one second ago",
        Refresh,
        claims_row(&a_sub, &a_acjti, &(NOW - 1).to_string(), &a_jti),
        Unauth(Unauthorized::Expired),
    );
    row(
        "authentic: exp exactly now",
        Refresh,
        claims_row(&a_sub, &a_acjti, &NOW.to_string(), &a_jti),
        Unauth(Unauthorized::Expired),
    );
    for (attack, sub) in [
        ("sub a number", "42".to_owned()),
        ("sub null", "null".to_owned()),
        ("sub an array", format!("[{a_sub}]")),
        ("sub an object", format!(r#"{{"email":{a_sub}}}"#)),
        ("sub empty", q("")),
        ("sub containing NUL", q("alice@mail.com\0")),
        ("sub containing a newline", q("alice@mail.com\nadmin")),
    ] {
        row(&format!("authentic: {attack}"), Refresh, claims_row(&sub, &a_acjti, &a_exp, &a_jti), CLAIMS);
    }
    row(
        "authentic: sub 2.8 KiB, within bounds, unknown user",
        Refresh,
        claims_row(&q(&"a".repeat(2800)), &a_acjti, &a_exp, &a_jti),
        NotFound,
    );
    row("authentic: sub unknown user", Refresh, claims_row(&q("mallory@mail.com"), &a_acjti, &a_exp, &a_jti), NotFound);
    row(
        "authentic: sub differs in case",
        Refresh,
        claims_row(&q("ALICE@mail.com"), &a_acjti, &a_exp, &a_jti),
        NotFound,
    );
    row(
        "authentic: sub is Bob but jti is Alice's current token",
        Refresh,
        claims_row(&q(BOB), &a_acjti, &a_exp, &a_jti),
        Unauth(Unauthorized::UnknownToken),
    );
    row(
        "authentic: fresh random jti unknown to the ledger",
        Refresh,
        claims_row(&a_sub, &a_acjti, &a_exp, &q(ID2)),
        Unauth(Unauthorized::UnknownToken),
    );
    let upper_jti = a_jti.to_uppercase();
    let v1_jti = format!("\"{}1{}\"", &a_jti[1..15], &a_jti[16..a_jti.len() - 1]);
    let braced = format!("\"{{{}}}\"", &a_jti[1..a_jti.len() - 1]);
    let simple = a_jti.replace('-', "");
    for (attack, acjti, jti) in [
        ("jti not a UUID", a_acjti.clone(), q("1")),
        ("jti upper-case UUID", a_acjti.clone(), upper_jti),
        ("jti UUID version 1", a_acjti.clone(), v1_jti),
        ("jti braced UUID", a_acjti.clone(), braced),
        ("jti UUID without hyphens", a_acjti.clone(), simple),
        ("jti SQL injection", a_acjti.clone(), q("' OR 1=1 --")),
        ("jti a number", a_acjti.clone(), "1".to_owned()),
        ("jti null", a_acjti.clone(), "null".to_owned()),
        ("acjti not a UUID", q("x"), a_jti.clone()),
        ("acjti empty", q(""), a_jti.clone()),
    ] {
        row(&format!("authentic: {attack}"), Refresh, claims_row(&a_sub, &acjti, &a_exp, &jti), CLAIMS);
    }
    let real_claims = alice_claims.trim_end_matches('}');
    for (attack, payload) in [
        ("unknown extra claim", format!(r#"{real_claims},"admin":true}}"#)),
        ("access claim role added", format!(r#"{real_claims},"role":"ROLE_ADMIN"}}"#)),
        ("nbf claim added", format!(r#"{real_claims},"nbf":0}}"#)),
        ("duplicate sub (Alice then Bob)", format!(r#"{real_claims},"sub":{}}}"#, q(BOB))),
        ("duplicate jti", format!(r#"{real_claims},"jti":{}}}"#, q(ID1))),
        ("duplicate exp", format!(r#"{real_claims},"exp":253402300799}}"#)),
        ("claim name in upper case", alice_claims.replace("\"sub\"", "\"SUB\"")),
        ("jti missing", format!(r#"{{"sub":{a_sub},"acjti":{a_acjti},"exp":{a_exp}}}"#)),
        ("claims an array", format!("[{a_sub},{a_acjti},{a_exp},{a_jti}]")),
        ("claims null", "null".to_owned()),
        ("claims an empty object", "{}".to_owned()),
        ("claims a string", q(&alice_claims)),
        ("claims nested inside an object", format!(r#"{{"claims":{alice_claims}}}"#)),
    ] {
        row(&format!("authentic: {attack}"), Refresh, authentic(&payload), CLAIMS);
    }
    for (attack, payload) in [
        ("payload not JSON", "Example of Ed25519 signing".to_owned()),
        ("payload JSON with a trailing comma", format!("{real_claims},}}")),
        ("payload JSON with a comment", format!("{real_claims}/* c */}}")),
        ("payload JSON with NaN", refresh_json(&a_sub, &a_acjti, "NaN", &a_jti)),
        ("payload JSON with Infinity", refresh_json(&a_sub, &a_acjti, "Infinity", &a_jti)),
        ("payload JSON with a BOM", format!("\u{feff}{alice_claims}")),
        ("payload JSON with trailing data", format!("{alice_claims}{alice_claims}")),
        ("payload JSON truncated", real_claims.to_owned()),
    ] {
        row(&format!("authentic: {attack}"), Refresh, authentic(&payload), NOT_JSON);
    }
    let utf16_claims = utf16(&alice_claims);
    row(
        "authentic: payload JSON in UTF-16",
        Refresh,
        bearer(&mint_with(&signing_key(), HEADER, utf16_claims)),
        NOT_JSON,
    );
    row(
        "authentic: payload with invalid UTF-8 in sub",
        Refresh,
        bearer(&mint_with(
            &signing_key(),
            HEADER,
            [
                b"{\"sub\":\"\xff\xfe\"".as_slice(),
                &alice_claims.as_bytes()[alice_claims.find(",\"acjti").expect("acjti")..],
            ]
            .concat(),
        )),
        NOT_JSON,
    );
    // serde_json skips unknown JSON iteratively (no recursion) and the
    // payload is at most 3 KiB: a deep authentic payload is JSON, just not
    // our claims.
    row(
        "authentic: payload nesting bomb, 1400 deep",
        Refresh,
        authentic(&format!(r#"{{"sub":{}{}}}"#, "[".repeat(1400), "]".repeat(1400))),
        CLAIMS,
    );
    row(
        "authentic: nested array in sub, 100 deep",
        Refresh,
        claims_row(&format!("{}{}", "[".repeat(100), "]".repeat(100)), &a_acjti, &a_exp, &a_jti),
        CLAIMS,
    );

    // Token kinds do not stand in for each other.
    row("access token offered for refresh", Refresh, bearer(&fx.alice.access_token), CLAIMS);
    row("refresh token offered to verify_access", Access, bearer(&fx.alice.refresh_token), CLAIMS);
    row(
        "alg none offered to verify_access",
        Access,
        bearer(&format!("{}.{}.{sig86}", b64(r#"{"alg":"none"}"#), segments(&fx.alice.access_token)[1])),
        ALG,
    );
    let access = payload(&fx.alice.access_token);
    let access_json = |exp: &str, sub: &str| {
        format!(
            r#"{{"acc":{},"sub":{sub},"role":{},"exp":{exp},"jti":{}}}"#,
            access["acc"], access["role"], access["jti"]
        )
    };
    row("authentic access token: exp as float", Access, authentic(&access_json("1800000300.5", &a_sub)), CLAIMS);
    row("authentic access token: empty sub", Access, authentic(&access_json("1800000300", r#""""#)), CLAIMS);
    row(
        "authentic access token: role escalated, signed by another key",
        Access,
        bearer(&forged(HEADER, &access_json("1800000300", &a_sub).replace("ROLE_USER", "ROLE_ADMIN"))),
        BAD_SIG,
    );
    row(
        "authentic access token: refresh claim acjti added",
        Access,
        authentic(&format!(r#"{},"acjti":{a_acjti}}}"#, access_json("1800000300", &a_sub).trim_end_matches('}'))),
        CLAIMS,
    );
    row(
        "access token, expired",
        Access,
        authentic(&access_json(&NOW.to_string(), &a_sub)),
        Unauth(Unauthorized::Expired),
    );

    rows
}

fn send(fx: &TwoSessions, case: &Case) -> Result<(), Error> {
    let header = case.header.as_deref();
    match case.target {
        Refresh => fx.refresh(header).map(drop),
        RefreshEd25519 => {
            let policy = Policy::builder().algorithm(Algorithm::Ed25519).build().expect("valid policy");
            fx.refresh_with(&policy, header).map(drop)
        }
        Access => fx.verify_access(header).map(drop),
    }
}

#[test]
fn every_hostile_input_gets_its_spec_status_and_changes_nothing() {
    let fx = TwoSessions::new();
    let mut before = fx.stats();
    assert_eq!(before.sessions, 2);
    let cases = corpus(&fx);

    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(names.insert(case.attack.as_str()), "duplicate row name: {}", case.attack);
    }

    let mut failures = Vec::new();
    for case in &cases {
        match send(&fx, case) {
            Ok(()) => failures.push(format!("{}: ACCEPTED, want {:?}", case.attack, case.want)),
            Err(error) => {
                let got = Want::of(&error);
                let reply = Reply::from_error(&error);
                let body: serde_json::Value = serde_json::from_slice(reply.body()).expect("envelope is JSON");
                let wire_ok = reply.status() == case.want.code()
                    && error.status_code() == case.want.code()
                    && error.name() == case.want.name()
                    && body["status"]["code"] == case.want.code()
                    && body["status"]["name"] == case.want.name()
                    && body["data"].is_null();
                if got != Some(case.want) || !wire_ok {
                    failures.push(format!(
                        "{}: got {got:?} ({}), want {:?}",
                        case.attack,
                        error.status_code(),
                        case.want
                    ));
                }
            }
        }
        let after = fx.stats();
        if after != before {
            failures.push(format!("{}: changed the ledger: {before:?} -> {after:?}", case.attack));
            before = after;
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // Nothing the corpus sent touched the legitimate sessions.
    let alice = fx.refresh(bearer(&fx.alice.refresh_token).as_deref()).expect("Alice's session still refreshes");
    fx.refresh(bearer(&alice.refresh_token).as_deref()).expect("and keeps rotating");
    fx.refresh(bearer(&fx.bob.refresh_token).as_deref()).expect("Bob's session still refreshes");
    let after = fx.stats();
    assert_eq!((after.sessions, after.revoked_sessions, after.rotations), (2, 0, 3));
}

/// The corpus again, on the other verification path of each door. The
/// test above sends refresh rows through verification by re-signing (the
/// default, since the service's `Ed25519Signer` holds its key) and access
/// rows through `AccessVerifier` with public keys only; here
/// refresh rows take the plain verification (`verify_by_resigning(false)`)
/// and access rows go through `TokenService::verify_access`, which
/// re-signs. Every row gets the same answer, and the ledger is unchanged.
#[test]
fn every_hostile_input_gets_the_same_answer_on_the_other_verification_path() {
    let fx = TwoSessions::new();
    let before = fx.stats();
    let plain = Policy::builder().verify_by_resigning(false).build().expect("valid policy");
    let plain_ed25519 =
        Policy::builder().verify_by_resigning(false).algorithm(Algorithm::Ed25519).build().expect("valid policy");
    // Access tokens are stateless: a service with the same key and clock
    // decides them as the issuer does.
    let issuer = token_refresh::TokenService::new(
        Policy::default(),
        token_refresh::MemoryUserStore::new([]),
        token_refresh::MemoryLedger::new(),
        token_refresh_test_support::keys::signer(),
        token_refresh_test_support::clock(),
    );
    let mut failures = Vec::new();
    for case in corpus(&fx) {
        let header = case.header.as_deref();
        let result = match case.target {
            Refresh => fx.refresh_with(&plain, header).map(drop),
            RefreshEd25519 => fx.refresh_with(&plain_ed25519, header).map(drop),
            Access => issuer.verify_access(header).map(drop),
        };
        match result {
            Ok(()) => failures.push(format!("{}: ACCEPTED", case.attack)),
            Err(error) if Want::of(&error) != Some(case.want) => {
                failures.push(format!("{}: got {:?}, want {:?}", case.attack, Want::of(&error), case.want));
            }
            Err(_) => {}
        }
        assert_eq!(fx.stats(), before, "{} changed the ledger", case.attack);
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
}

/// The logout door (`DELETE`) shares the refresh token checks up to the
/// ledger: every row decided before the ledger gets the same answer there
/// and changes nothing. (Logout does not consult the user directory, so
/// the 404 rows and the rows that reach the ledger with one of Alice's
/// real ids are not replayed here.)
#[test]
fn the_logout_door_refuses_the_same_rows_the_same_way() {
    let fx = TwoSessions::new();
    let before = fx.stats();
    let mut checked = 0;
    for case in corpus(&fx) {
        let reaches_ledger = matches!(case.want, NotFound | Unauth(Unauthorized::UnknownToken));
        if !matches!(case.target, Refresh) || reaches_ledger {
            continue;
        }
        let result = ready(fx.service.logout(case.header.as_deref()));
        let error = result.expect_err(&case.attack);
        assert_eq!(Want::of(&error), Some(case.want), "{}", case.attack);
        assert_eq!(fx.stats(), before, "{} changed the ledger through logout", case.attack);
        checked += 1;
    }
    assert!(checked >= 190, "{checked} rows replayed");
    fx.refresh(bearer(&fx.alice.refresh_token).as_deref()).expect("Alice's session is still live");
}

#[test]
fn the_corpus_is_large_and_covers_every_class() {
    let fx = TwoSessions::new();
    let cases = corpus(&fx);
    assert!(cases.len() >= 150, "{} rows", cases.len());
    for code in [400, 401, 404, 422] {
        assert!(cases.iter().any(|c| c.want.code() == code), "no row expects {code}");
    }
}

/// The minter is honest: the same helper with well-formed claims gives a
/// token the service accepts, so every "authentic" row above is refused
/// for the defect it names and not for a bad signature.
#[test]
fn control_a_minted_token_with_real_claims_is_accepted() {
    let fx = TwoSessions::new();
    let alice = payload(&fx.alice.refresh_token);
    let claims =
        refresh_json(&q(ALICE), &alice["acjti"].to_string(), &alice["exp"].to_string(), &alice["jti"].to_string());
    let minted = mint(&claims);
    assert_eq!(minted, fx.alice.refresh_token, "Ed25519 is deterministic: minting reproduces the issued token");
    fx.refresh(bearer(&minted).as_deref()).expect("accepted");
}

/// The PEM used as an HMAC key above is really our public key, as a JWKS
/// or PEM endpoint would publish it.
#[test]
fn control_the_hmac_key_is_our_published_public_key() {
    let public = signing_key().verifying_key().to_bytes();
    let loaded = VerificationKey::from_public_key_pem(&spki_pem(&public)).expect("valid SPKI PEM");
    assert_eq!(loaded.to_bytes(), public);
}

/// Bounded work: an oversized header is refused before anything is
/// decoded, whatever it contains.
#[test]
fn oversized_input_is_refused_before_decoding() {
    let fx = TwoSessions::new();
    let good = format!("Bearer {}", fx.alice.refresh_token);
    let mut padded = good.clone().into_bytes();
    padded.resize(token_refresh::policy::MAX_HEADER_LEN + 1, b' ');
    // A valid token followed by spaces that take it just past the limit is
    // still refused: the length check runs first, before trimming.
    let error = fx.refresh(Some(&padded)).expect_err("too long");
    assert!(matches!(error, Error::BadRequest(BadRequest::HeaderTooLong)), "{error:?}");
    // Length first, before the byte scan: a 1 MiB run of non-ASCII bytes
    // is "too long", not "not ASCII".
    let error = fx.refresh(Some(&vec![0xff; 1 << 20])).expect_err("too long");
    assert!(matches!(error, Error::BadRequest(BadRequest::HeaderTooLong)), "{error:?}");
    // Exactly at the limit the same bytes are looked at (and accepted).
    padded.truncate(token_refresh::policy::MAX_HEADER_LEN);
    fx.refresh(Some(&padded)).expect("at the limit");
}

/// Writes the corpus as fuzzing seeds under `fuzz/seeds/` (see
/// `fuzz/README.md`). Run on demand:
/// `cargo test --test all -- --ignored hostile::write_fuzz_seeds`.
#[test]
#[ignore = "writes files; run on demand to refresh fuzz/seeds"]
fn write_fuzz_seeds() {
    /// libFuzzer's -max_len in fuzz/README.md: just past the 8 KiB limit.
    const MAX_SEED: usize = 9000;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let fx = TwoSessions::new();
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    // The fuzz world's own session (fixed ids, see fuzz/src/lib.rs): its
    // current token, whole and as a payload to be signed.
    let world_claims = refresh_json(&q(ALICE), &q(ID1), &(NOW + 86_400).to_string(), &q(ID2));
    let world_token = format!("Bearer {}", mint(&world_claims));
    seeds.push(("header", "world-current-token".to_owned(), world_token.clone().into_bytes()));
    seeds.push(("refresh", "world-current-token".to_owned(), [b"\0", world_token.as_bytes()].concat()));
    seeds.push(("refresh", "world-current-claims".to_owned(), [b"\x01", world_claims.as_bytes()].concat()));
    seeds.push(("decode", "world-current-claims".to_owned(), [b"\x01", world_claims.as_bytes()].concat()));
    let slug = |i: usize, attack: &str| -> String {
        let words: String =
            attack.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
        format!("{i:03}-{words}")
    };
    for (i, case) in corpus(&fx).into_iter().enumerate() {
        let Some(header) = case.header else { continue };
        if header.len() > MAX_SEED {
            continue;
        }
        let name = slug(i, &case.attack);
        seeds.push(("header", name.clone(), header.clone()));
        seeds.push(("refresh", name.clone(), [b"\0", header.as_slice()].concat()));
        if let Some(token) = header.strip_prefix(b"Bearer ") {
            seeds.push(("decode", name.clone(), [b"\0", token].concat()));
            let payload = token
                .split(|&b| b == b'.')
                .nth(1)
                .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok());
            if let Some(payload) = payload {
                seeds.push(("decode", format!("{name}-payload"), [b"\x01", payload.as_slice()].concat()));
                seeds.push(("refresh", format!("{name}-payload"), [b"\x01", payload.as_slice()].concat()));
            }
        }
    }
    let (login_rows, genuine) = login_corpus();
    seeds.push(("login", "genuine-body".to_owned(), genuine));
    for (i, (attack, body, _)) in login_rows.into_iter().enumerate() {
        if body.len() <= MAX_SEED {
            seeds.push(("login", slug(i, attack), body));
        }
    }
    for (target, name, bytes) in seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create seed dir");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

/// The login corpus: hostile bodies with their SPEC §1 status, and the
/// genuine body of `carol@mail.com` (login key seed `[0x11; 32]`).
#[expect(clippy::type_complexity, reason = "one row: attack, body, outcome")]
fn login_corpus() -> (Vec<(&'static str, Vec<u8>, Want)>, Vec<u8>) {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let carol_key = SigningKey::from_bytes(&[0x11; 32]);
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let body = |email: &str, signature: &str, key: &str| {
        format!(r#"{{"email":{},"signature":"{signature}","publicKey":"{key}"}}"#, q(email))
    };
    let carol_pk = hex(&carol_key.verifying_key().to_bytes());
    let carol_sig = carol_key.sign(b"carol@mail.com").to_bytes();
    let mut forgery = [0u8; 64];
    forgery[0] = 1;

    let rows: Vec<(&'static str, Vec<u8>, Want)> = vec![
        ("body over 4 KiB", vec![b' '; token_refresh::MAX_LOGIN_BODY + 1], Bad(BadRequest::MalformedBody)),
        ("body not JSON", b"email=carol".to_vec(), Bad(BadRequest::MalformedBody)),
        ("body empty", Vec::new(), Bad(BadRequest::MalformedBody)),
        ("body an array", br#"["carol@mail.com","00","00"]"#.to_vec(), Bad(BadRequest::MalformedBody)),
        (
            "body an array of the genuine values",
            format!(r#"["carol@mail.com","{}","{carol_pk}"]"#, hex(&carol_sig)).into_bytes(),
            Bad(BadRequest::MalformedBody),
        ),
        (
            "body with an extra member",
            body("carol@mail.com", &hex(&carol_sig), &carol_pk).replace('}', r#","admin":true}"#).into_bytes(),
            Bad(BadRequest::MalformedBody),
        ),
        (
            "signature not hex",
            body("carol@mail.com", &"zz".repeat(64), &carol_pk).into_bytes(),
            Unproc(Unprocessable::LoginEncoding),
        ),
        (
            "signature too short",
            body("carol@mail.com", "00", &carol_pk).into_bytes(),
            Unproc(Unprocessable::LoginEncoding),
        ),
        (
            "public key too long",
            body("carol@mail.com", &hex(&carol_sig), &format!("{carol_pk}00")).into_bytes(),
            Unproc(Unprocessable::LoginEncoding),
        ),
        ("unknown user", body("mallory@mail.com", &hex(&carol_sig), &carol_pk).into_bytes(), NotFound),
        (
            "another key than the user's",
            body("carol@mail.com", &hex(&carol_sig), &hex(&signing_key().verifying_key().to_bytes())).into_bytes(),
            Unproc(Unprocessable::LoginKey),
        ),
        (
            "signature over another e-mail",
            body("carol@mail.com", &hex(&carol_key.sign(b"bob@mail.com").to_bytes()), &carol_pk).into_bytes(),
            Unauth(Unauthorized::LoginSignature),
        ),
        (
            "all-zero signature",
            body("carol@mail.com", &"00".repeat(64), &carol_pk).into_bytes(),
            Unauth(Unauthorized::LoginSignature),
        ),
        (
            "non-canonical S (S + L)",
            body("carol@mail.com", &hex(&add_group_order_to_s(&carol_sig)), &carol_pk).into_bytes(),
            Unauth(Unauthorized::LoginSignature),
        ),
        (
            "universal forgery under a weak registered key",
            body("weak@mail.com", &hex(&forgery), &hex(&identity)).into_bytes(),
            Unauth(Unauthorized::LoginSignature),
        ),
    ];
    (rows, body("carol@mail.com", &hex(&carol_sig), &carol_pk).into_bytes())
}

/// The login door (`POST`) is unauthenticated too: hostile bodies get their
/// SPEC §1 status and create no session. A user registered with a weak
/// (identity) login key cannot be logged in with the universal forgery
/// that plain `verify` would accept.
#[test]
fn the_login_door_refuses_hostile_bodies_and_creates_nothing() {
    use std::sync::Arc;
    use token_refresh::ed25519_dalek::VerifyingKey;

    use token_refresh::User;
    use token_refresh_test_support::flow::{service_over, shared_store};

    let carol_key = SigningKey::from_bytes(&[0x11; 32]);
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).expect("the identity decompresses");
    let store = shared_store([
        User::new("carol@mail.com", "carol@acc", "ROLE_USER").with_login_key(carol_key.verifying_key()),
        User::new("weak@mail.com", "weak@acc", "ROLE_USER").with_login_key(weak),
    ]);
    let signer = Arc::new(token_refresh::Ed25519Signer::from_seed(&SEED).expect("seed"));
    let clock = Arc::new(token_refresh::clock::ManualClock::at_unix(NOW));
    let service = service_over(&Policy::default(), &store, &signer, &clock);
    let (rows, genuine) = login_corpus();
    let before = store.ledger().stats();
    for (attack, request, want) in rows {
        let error = ready(service.login(&request)).expect_err(attack);
        assert_eq!(Want::of(&error), Some(want), "{attack}");
        assert_eq!(store.ledger().stats(), before, "{attack} created a session");
    }
    // Control: the genuine body logs in.
    ready(service.login(&genuine)).expect("genuine login");
    assert_eq!(store.ledger().stats().sessions, 1);
}
