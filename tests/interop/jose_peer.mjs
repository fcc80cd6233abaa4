// An independent JOSE implementation (Node's `jose`) as a peer.
//
// verify: stdin {"jwks": {...}, "tokens": [...]} -> stdout [claims | {"error": ...}]
//         Each token is checked with only the published JWK Set.
// mint:   stdin {"pem": "...", "kid": null | "...", "alg": "EdDSA", "claims": [...]} -> stdout [token]
import { createLocalJWKSet, importPKCS8, jwtVerify, SignJWT } from 'jose';

const input = JSON.parse(await new Promise((resolve) => {
  let data = '';
  process.stdin.on('data', (chunk) => { data += chunk; });
  process.stdin.on('end', () => resolve(data));
}));

async function verify({ jwks, tokens }) {
  const keys = createLocalJWKSet(jwks);
  const out = [];
  for (const token of tokens) {
    try {
      const { payload } = await jwtVerify(token, keys, { algorithms: ['EdDSA'] });
      out.push(payload);
    } catch (error) {
      out.push({ error: error.code ?? error.name });
    }
  }
  return out;
}

async function mint({ pem, kid, alg, claims }) {
  const key = await importPKCS8(pem, alg ?? 'EdDSA');
  const header = { alg: alg ?? 'EdDSA', typ: 'JWT', ...(kid ? { kid } : {}) };
  return Promise.all(claims.map((c) => new SignJWT(c).setProtectedHeader(header).sign(key)));
}

const mode = process.argv[2];
const result = mode === 'verify' ? await verify(input) : await mint(input);
process.stdout.write(JSON.stringify(result));
