// scrypt (RFC 7914) for the stretching of spec 2, written for speed on typed
// arrays: the Salsa20/8 core works on 16 local variables, BlockMix writes its
// shuffled output in place, and ROMix fills V without extra copies.
import { pbkdf2 } from "./kdf.js";

// blockMix computes BlockMix(a[ai..] XOR b[bi..]) into out[oi..]; every block
// is 32*r words. With b === null the input is a alone. x is a 16-word scratch.
function blockMix(a, ai, b, bi, out, oi, r, x) {
  const words = 32 * r;
  let last = ai + words - 16;
  for (let k = 0; k < 16; k++) x[k] = a[last + k];
  if (b !== null) {
    last = bi + words - 16;
    for (let k = 0; k < 16; k++) x[k] ^= b[last + k];
  }
  for (let i = 0; i < 2 * r; i++) {
    const o = ai + 16 * i;
    let j0 = x[0] ^ a[o], j1 = x[1] ^ a[o + 1], j2 = x[2] ^ a[o + 2], j3 = x[3] ^ a[o + 3],
      j4 = x[4] ^ a[o + 4], j5 = x[5] ^ a[o + 5], j6 = x[6] ^ a[o + 6], j7 = x[7] ^ a[o + 7],
      j8 = x[8] ^ a[o + 8], j9 = x[9] ^ a[o + 9], j10 = x[10] ^ a[o + 10], j11 = x[11] ^ a[o + 11],
      j12 = x[12] ^ a[o + 12], j13 = x[13] ^ a[o + 13], j14 = x[14] ^ a[o + 14], j15 = x[15] ^ a[o + 15];
    if (b !== null) {
      const p = bi + 16 * i;
      j0 ^= b[p]; j1 ^= b[p + 1]; j2 ^= b[p + 2]; j3 ^= b[p + 3];
      j4 ^= b[p + 4]; j5 ^= b[p + 5]; j6 ^= b[p + 6]; j7 ^= b[p + 7];
      j8 ^= b[p + 8]; j9 ^= b[p + 9]; j10 ^= b[p + 10]; j11 ^= b[p + 11];
      j12 ^= b[p + 12]; j13 ^= b[p + 13]; j14 ^= b[p + 14]; j15 ^= b[p + 15];
    }
    let x0 = j0, x1 = j1, x2 = j2, x3 = j3, x4 = j4, x5 = j5, x6 = j6, x7 = j7,
      x8 = j8, x9 = j9, x10 = j10, x11 = j11, x12 = j12, x13 = j13, x14 = j14, x15 = j15, u;
    for (let n = 0; n < 8; n += 2) { // Salsa20/8: four double rounds
      u = x0 + x12; x4 ^= u << 7 | u >>> 25;
      u = x4 + x0; x8 ^= u << 9 | u >>> 23;
      u = x8 + x4; x12 ^= u << 13 | u >>> 19;
      u = x12 + x8; x0 ^= u << 18 | u >>> 14;
      u = x5 + x1; x9 ^= u << 7 | u >>> 25;
      u = x9 + x5; x13 ^= u << 9 | u >>> 23;
      u = x13 + x9; x1 ^= u << 13 | u >>> 19;
      u = x1 + x13; x5 ^= u << 18 | u >>> 14;
      u = x10 + x6; x14 ^= u << 7 | u >>> 25;
      u = x14 + x10; x2 ^= u << 9 | u >>> 23;
      u = x2 + x14; x6 ^= u << 13 | u >>> 19;
      u = x6 + x2; x10 ^= u << 18 | u >>> 14;
      u = x15 + x11; x3 ^= u << 7 | u >>> 25;
      u = x3 + x15; x7 ^= u << 9 | u >>> 23;
      u = x7 + x3; x11 ^= u << 13 | u >>> 19;
      u = x11 + x7; x15 ^= u << 18 | u >>> 14;
      u = x0 + x3; x1 ^= u << 7 | u >>> 25;
      u = x1 + x0; x2 ^= u << 9 | u >>> 23;
      u = x2 + x1; x3 ^= u << 13 | u >>> 19;
      u = x3 + x2; x0 ^= u << 18 | u >>> 14;
      u = x5 + x4; x6 ^= u << 7 | u >>> 25;
      u = x6 + x5; x7 ^= u << 9 | u >>> 23;
      u = x7 + x6; x4 ^= u << 13 | u >>> 19;
      u = x4 + x7; x5 ^= u << 18 | u >>> 14;
      u = x10 + x9; x11 ^= u << 7 | u >>> 25;
      u = x11 + x10; x8 ^= u << 9 | u >>> 23;
      u = x8 + x11; x9 ^= u << 13 | u >>> 19;
      u = x9 + x8; x10 ^= u << 18 | u >>> 14;
      u = x15 + x14; x12 ^= u << 7 | u >>> 25;
      u = x12 + x15; x13 ^= u << 9 | u >>> 23;
      u = x13 + x12; x14 ^= u << 13 | u >>> 19;
      u = x14 + x13; x15 ^= u << 18 | u >>> 14;
    }
    // Y_i goes to the even half (i even) or the odd half (i odd) of the output.
    const d = oi + 16 * ((i & 1) * r + (i >> 1));
    out[d] = x[0] = (x0 + j0) | 0; out[d + 1] = x[1] = (x1 + j1) | 0; out[d + 2] = x[2] = (x2 + j2) | 0; out[d + 3] = x[3] = (x3 + j3) | 0;
    out[d + 4] = x[4] = (x4 + j4) | 0; out[d + 5] = x[5] = (x5 + j5) | 0; out[d + 6] = x[6] = (x6 + j6) | 0; out[d + 7] = x[7] = (x7 + j7) | 0;
    out[d + 8] = x[8] = (x8 + j8) | 0; out[d + 9] = x[9] = (x9 + j9) | 0; out[d + 10] = x[10] = (x10 + j10) | 0; out[d + 11] = x[11] = (x11 + j11) | 0;
    out[d + 12] = x[12] = (x12 + j12) | 0; out[d + 13] = x[13] = (x13 + j13) | 0; out[d + 14] = x[14] = (x14 + j14) | 0; out[d + 15] = x[15] = (x15 + j15) | 0;
  }
}

// roMix runs scrypt's ROMix on the 32*r words of block in place. onProgress,
// if given, is called with a fraction in [0, 1] about 64 times.
function roMix(block, N, r, onProgress) {
  const words = 32 * r;
  const V = new Uint32Array(words * N); // 128*r*N bytes: 64 MiB for the protocol
  const x = new Uint32Array(16);
  const step = Math.max(1, N >> 5);
  V.set(block);
  for (let i = 0; i < N - 1; i++) {
    blockMix(V, i * words, null, 0, V, (i + 1) * words, r, x);
    if (onProgress && i % step === 0) onProgress(i / (2 * N));
  }
  let X = new Uint32Array(words), Y = new Uint32Array(words);
  blockMix(V, (N - 1) * words, null, 0, X, 0, r, x);
  const mask = N - 1, tail = words - 16;
  for (let i = 0; i < N; i++) {
    const j = X[tail] & mask; // Integerify: the low word of the last 64-byte block
    blockMix(X, 0, V, j * words, Y, 0, r, x);
    const t = X; X = Y; Y = t;
    if (onProgress && i % step === 0) onProgress(0.5 + i / (2 * N));
  }
  block.set(X);
}

// scrypt derives dkLen bytes from password and salt (Uint8Arrays). N must be
// a power of two greater than 1.
export async function scrypt(password, salt, N, r, p, dkLen, onProgress) {
  if (!(N > 1 && (N & (N - 1)) === 0) || r < 1 || p < 1) throw new Error("scrypt: bad parameters");
  const B = await pbkdf2(password, salt, 1, p * 128 * r);
  const words = 32 * r;
  const block = new Uint32Array(words);
  for (let k = 0; k < p; k++) {
    const dv = new DataView(B.buffer, B.byteOffset + k * 128 * r, 128 * r);
    for (let w = 0; w < words; w++) block[w] = dv.getUint32(4 * w, true);
    roMix(block, N, r, onProgress && ((f) => onProgress((k + f) / p)));
    for (let w = 0; w < words; w++) dv.setUint32(4 * w, block[w], true);
  }
  const out = await pbkdf2(password, B, 1, dkLen);
  B.fill(0);
  block.fill(0);
  return out;
}
