// Byte-string helpers: every binary value is a Uint8Array; the wire uses
// lower-case hex (spec 1.2).

const enc = new TextEncoder();

export const utf8 = (s) => enc.encode(s);
export const fromUtf8 = (b) => new TextDecoder("utf-8", { fatal: true }).decode(b);

export function toHex(b) {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

// fromHex decodes hex of either case; with n it also requires n bytes.
export function fromHex(s, n) {
  if (typeof s !== "string" || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new Error("not hex");
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.substr(2 * i, 2), 16);
  if (n !== undefined && b.length !== n) throw new Error(`expected ${n} bytes of hex`);
  return b;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export function xor(a, b) {
  if (a.length !== b.length) throw new Error("xor: lengths differ");
  return a.map((v, i) => v ^ b[i]);
}

export const random = (n) => crypto.getRandomValues(new Uint8Array(n));

export function toBase64(b) {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return btoa(s);
}
