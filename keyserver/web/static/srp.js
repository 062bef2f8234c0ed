// Client side of the SRP-6a variant of spec 3 (node-srp 0.2.0 formulas) with
// native BigInt: 2048-bit group of RFC 5054, g = 2, H = SHA-256, values
// padded to 256 bytes.
import { concat, fromHex, random, toHex, utf8 } from "./bytes.js";
import { sha256 } from "./kdf.js";

export const TYPE = "SRP-6a/SHA256/2048/v1";
const N = BigInt("0x" +
  "AC6BDB41324A9A9BF166DE5E1389582FAF72B6651987EE07FC3192943DB56050A37329CBB4A099ED8193E0757767A13DD52312AB4B03310DCD7F48A9DA04FD50" +
  "E8083969EDB767B0CF6095179A163AB3661A05FBD5FAAAE82918A9962F0B93B855F97993EC975EEAA80D740ADBF4FF747359D041D5C33EA71D281E446B14773B" +
  "CA97B43A23FB801676BD207A436C6481F1D2B9078717461A5B9D32E688F87748544523B524B0D57D5EA77A2775D2ECFA032CFBDBF52FB3786160279004E57AE6" +
  "AF874E7303CE53299CCC041C7BC308D82A5698F3A8D0C38271AE35F8E9DBFBB694B5C803D89F7AE435DE236D525F54759B65E372FCD68EF20FA7111F9E4AFF73");
const g = 2n;
// k = H(PAD(N) || PAD(g)), precomputed (spec 3).
const k = 0x05b9e8ef059c6b32ea59fc1d322d37f04aa30bae5aa9003b8321e21ddb04e300n;
const LEN = 256;

const int = (b) => (b.length ? BigInt("0x" + toHex(b)) : 0n);

// pad is the big-endian encoding of n left-padded to 256 bytes.
function pad(n) {
  const h = n.toString(16);
  if (h.length > 2 * LEN) throw new Error("srp: value too large");
  return fromHex(h.padStart(2 * LEN, "0"));
}

function modPow(base, exp, m) {
  let result = 1n;
  base %= m;
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % m;
    base = (base * base) % m;
    exp >>= 1n;
  }
  return result;
}

const mod = (a, m) => ((a % m) + m) % m;

// x = H(s || H(I || ":" || srpPw))
async function computeX(email, srpPw, salt) {
  return int(await sha256(concat(salt, await sha256(concat(email, utf8(":"), srpPw)))));
}

// verifier returns v = PAD(g^x mod N) for account creation and reset.
export async function verifier(email, srpPw, salt) {
  return pad(modPow(g, await computeX(email, srpPw, salt), N));
}

// clientProof answers the server's B (256 bytes): it returns A, M1 (sent as
// M) and K (the key of the auth/finish bundle). a is the client secret
// (random 32 bytes unless given, for vector tests).
export async function clientProof(email, srpPw, salt, Bbytes, a = random(32)) {
  if (Bbytes.length !== LEN) throw new Error("srp: B must be 256 bytes");
  const B = int(Bbytes);
  if (B <= 0n || B >= N) throw new Error("srp: B out of range");
  const aInt = int(a);
  const A = pad(modPow(g, aInt, N));
  const u = int(await sha256(concat(A, Bbytes)));
  if (u === 0n) throw new Error("srp: u = 0");
  const x = await computeX(email, srpPw, salt);
  const base = mod(B - k * modPow(g, x, N), N);
  const S = pad(modPow(base, aInt + u * x, N));
  const M1 = await sha256(concat(A, Bbytes, S));
  const K = await sha256(S);
  return { A, M1, K };
}
