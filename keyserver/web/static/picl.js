// Token derivation and bundles of spec 4.
import { concat, xor } from "./bytes.js";
import { hkdf, hmac, hmacVerify } from "./kdf.js";
import { KW } from "./stretch.js";

const EMPTY = new Uint8Array(0);

// deriveToken splits HKDF(seed, "", KW(tokenType), 96) into the Hawk id, the
// Hawk key and the bundle key (spec 4.1).
export async function deriveToken(tokenType, seed) {
  const out = await hkdf(seed, EMPTY, KW(tokenType), 96);
  return { tokenId: out.slice(0, 32), authKey: out.slice(32, 64), bundleKey: out.slice(64) };
}

async function bundleKeys(key, context, n) {
  const out = await hkdf(key, EMPTY, KW(context), 32 + n);
  return { hmacKey: out.slice(0, 32), xorKey: out.slice(32) };
}

// bundle returns ciphertext || HMAC(hmacKey, ciphertext) (spec 4.2).
export async function bundle(key, context, plaintext) {
  const { hmacKey, xorKey } = await bundleKeys(key, context, plaintext.length);
  const ct = xor(plaintext, xorKey);
  return concat(ct, await hmac(hmacKey, ct));
}

// unbundle checks the trailing HMAC (constant time) and returns the plaintext.
export async function unbundle(key, context, data) {
  if (data.length < 32) throw new Error(`${context} bundle: too short`);
  const ct = data.subarray(0, data.length - 32), mac = data.subarray(data.length - 32);
  const { hmacKey, xorKey } = await bundleKeys(key, context, ct.length);
  if (!(await hmacVerify(hmacKey, ct, mac))) throw new Error(`${context} bundle: bad HMAC (wrong key or tampered response)`);
  return xor(ct, xorKey);
}
