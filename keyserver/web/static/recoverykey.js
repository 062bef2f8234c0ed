// The recovery key of docs/recovery-key.md (extension RK): 32 random bytes R
// that only the user holds, written as 53 Crockford base32 characters (the
// last one a check character), from which the client derives the
// recoveryKeyId the server compares and the AES-256-GCM key of the
// recoveryData that holds kB (with the account's uid as associated data).
import { random } from "./bytes.js";
import { hkdf, sha256 } from "./kdf.js";
import { KW } from "./stretch.js";

// ALPHABET is Crockford's base32 (no I, L, O, U).
export const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
export const KEY_CHARS = 53; // 52 for the 256 bits of R (and 4 zero bits), 1 check character

const EMPTY = new Uint8Array(0);

const subtle = () => {
  if (!globalThis.crypto?.subtle) throw new Error("WebCrypto is not available (the page must be served over https)");
  return globalThis.crypto.subtle;
};

// RecoveryKeyError is a typed string that is not a recovery key: kind is
// "length", "character" or "check" (RK.1), message says it in words.
export class RecoveryKeyError extends Error {
  constructor(kind, message, detail = {}) {
    super(message);
    this.kind = kind;
    Object.assign(this, detail);
  }
}

// newR returns a fresh R (32 bytes from the CSPRNG).
export const newR = () => random(32);

// checkChar is the alphabet's character of the top 5 bits of SHA-256(R).
async function checkChar(R) {
  return ALPHABET[(await sha256(R))[0] >> 3];
}

// group cuts the 53 characters into twelve groups of four and one of five.
const group = (s) => [...s.slice(0, 48).match(/..../g), s.slice(48)];

// formatKey returns the recovery key string of R: 13 groups separated by
// single spaces (RK.1).
export async function formatKey(R) {
  if (!(R instanceof Uint8Array) || R.length !== 32) throw new Error("a recovery key is 32 bytes");
  let out = "", acc = 0, bits = 0;
  for (const b of [...R, 0]) { // the 0 byte supplies the 4 zero bits (only 4 of its 8 are used)
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < 52) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  out += await checkChar(R);
  return group(out).join(" ");
}

// keyGroups returns the 13 groups of a key string (for showing it).
export const keyGroups = (keyString) => keyString.split(" ");

const ordinal = (n) => {
  const s = ["th", "st", "nd", "rd"], v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
};

// normalize applies RK.1's step 1: spaces, tabs and hyphens go; a-z become
// A-Z; O becomes 0, I and L become 1.
export function normalize(typed) {
  return String(typed).replace(/[ \t-]/g, "").replace(/[a-z]/g, (c) => c.toUpperCase())
    .replace(/O/g, "0").replace(/[IL]/g, "1");
}

// parseKey reads a typed recovery key (RK.1) and returns R, or throws a
// RecoveryKeyError whose message can be shown to the user.
export async function parseKey(typed) {
  const chars = [...normalize(typed)]; // code points: "é" is one character
  if (chars.length !== KEY_CHARS) {
    const got = chars.length === 0 ? "nothing was entered"
      : `this has ${chars.length} ${chars.length === 1 ? "character" : "characters"}`;
    throw new RecoveryKeyError("length",
      `A recovery key has 53 letters and digits (spaces do not count); ${got}. Check that you typed all of it.`,
      { length: chars.length });
  }
  const bad = chars.findIndex((c) => !ALPHABET.includes(c));
  if (bad >= 0) {
    const c = chars[bad];
    const shown = /^\s$/.test(c) ? "a blank" : `“${c}”`;
    throw new RecoveryKeyError("character",
      `The ${ordinal(bad + 1)} character, ${shown}, is never in a recovery key. Recovery keys have only digits and the letters A to Z without I, L, O and U.`,
      { position: bad + 1, character: c });
  }
  const R = new Uint8Array(32);
  let acc = 0, bits = 0, o = 0;
  for (const c of chars.slice(0, 52)) {
    acc = (acc << 5) | ALPHABET.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      R[o++] = (acc >> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  // 52 × 5 = 260 = 32 × 8 + 4: four bits are left over, and they must be zero
  if (o !== 32 || bits !== 4 || acc !== 0 || chars[52] !== (await checkChar(R))) {
    throw new RecoveryKeyError("check",
      "This is not the recovery key: a character is mistyped. Compare each group with your copy.");
  }
  return R;
}

// recoveryKeyId (16 bytes) = HKDF(R, salt = empty, info = KW("recoveryKeyId"), 16).
export const recoveryKeyId = (R) => hkdf(R, EMPTY, KW("recoveryKeyId"), 16);

// recoveryEncKey (32 bytes) = HKDF(R, salt = empty, info = KW("recoveryData"), 32).
export const recoveryEncKey = (R) => hkdf(R, EMPTY, KW("recoveryData"), 32);

const gcmKey = async (R, usage) =>
  subtle().importKey("raw", await recoveryEncKey(R), { name: "AES-GCM" }, false, [usage]);

// sealData returns recoveryData (60 bytes) = nonce || AES-256-GCM(recoveryEncKey,
// nonce, kB, aad = uid); nonce is fresh unless given (test vectors).
export async function sealData(R, uid, kB, nonce = random(12)) {
  if (kB.length !== 32 || uid.length !== 16 || nonce.length !== 12) throw new Error("sealData: kB 32, uid 16, nonce 12 bytes");
  const ct = new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv: nonce, additionalData: uid, tagLength: 128 },
    await gcmKey(R, "encrypt"), kB));
  const out = new Uint8Array(12 + ct.length);
  out.set(nonce);
  out.set(ct, 12);
  return out;
}

// openData returns the kB that recoveryData holds, or throws when R or uid
// is not the one it was sealed with (or the data was changed).
export async function openData(R, uid, data) {
  if (data.length !== 60) throw new Error("recoveryData is 60 bytes");
  let kB;
  try {
    kB = new Uint8Array(await subtle().decrypt({ name: "AES-GCM", iv: data.slice(0, 12), additionalData: uid, tagLength: 128 },
      await gcmKey(R, "decrypt"), data.slice(12)));
  } catch {
    throw new Error("recoveryData does not open with this recovery key and account");
  }
  if (kB.length !== 32) throw new Error("recoveryData does not hold a 32-byte key");
  return kB;
}

// makeRecoveryKey makes a fresh recovery key for an account: R, its string,
// the id and the recoveryData that holds kB.
export async function makeRecoveryKey(uid, kB) {
  const R = newR();
  return { R, keyString: await formatKey(R), id: await recoveryKeyId(R), data: await sealData(R, uid, kB) };
}
