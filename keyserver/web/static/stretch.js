// Password stretching of spec 2 (PBKDF2 -> scrypt -> PBKDF2 -> HKDF) with the
// protocol's fixed parameters.
import { concat, utf8 } from "./bytes.js";
import { hkdf, pbkdf2 } from "./kdf.js";
import { scrypt } from "./scrypt.js";

export const NS = "identity.mozilla.com/picl/v1/";
export const KW = (name) => utf8(NS + name);
// KWE(name, email): email is the exact bytes.
export const KWE = (name, email) => concat(utf8(NS + name + ":"), email);

export const PARAMS = Object.freeze({
  type: "PBKDF2/scrypt/PBKDF2/v1", PBKDF2_rounds_1: 20000, scrypt_N: 65536,
  scrypt_r: 8, scrypt_p: 1, PBKDF2_rounds_2: 20000,
});

// stretch returns srpPw and unwrapBKey (32 bytes each) from the email and
// password bytes and the 32-byte passwordSalt. onProgress gets fractions.
export async function stretch(email, password, passwordSalt, onProgress) {
  const p = PARAMS;
  const K1 = await pbkdf2(password, KWE("first-PBKDF", email), p.PBKDF2_rounds_1, 32);
  onProgress?.(0.05);
  const K2 = await scrypt(K1, KW("scrypt"), p.scrypt_N, p.scrypt_r, p.scrypt_p, 32,
    onProgress && ((f) => onProgress(0.05 + 0.9 * f)));
  const pw2 = concat(K2, password); // the password is appended again
  const stretchedPW = await pbkdf2(pw2, KWE("second-PBKDF", email), p.PBKDF2_rounds_2, 32);
  const out = await hkdf(stretchedPW, passwordSalt, KW("mainKDF"), 64);
  for (const b of [K1, K2, pw2, stretchedPW]) b.fill(0);
  onProgress?.(1);
  return { srpPw: out.slice(0, 32), unwrapBKey: out.slice(32) };
}
