// SHA-256, HMAC-SHA256, PBKDF2-HMAC-SHA256 and HKDF-SHA256 through WebCrypto
// (which needs a secure context: https, or http on localhost).

const subtle = () => {
  if (!globalThis.crypto?.subtle) throw new Error("WebCrypto is not available (the page must be served over https)");
  return globalThis.crypto.subtle;
};

export async function sha256(data) {
  return new Uint8Array(await subtle().digest("SHA-256", data));
}

const hmacKey = (key, usage) =>
  subtle().importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [usage]);

export async function hmac(key, data) {
  return new Uint8Array(await subtle().sign("HMAC", await hmacKey(key, "sign"), data));
}

// hmacVerify compares in constant time (WebCrypto's verify).
export async function hmacVerify(key, data, mac) {
  return subtle().verify("HMAC", await hmacKey(key, "verify"), mac, data);
}

export async function pbkdf2(password, salt, iterations, length) {
  const key = await subtle().importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle().deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 8 * length);
  return new Uint8Array(bits);
}

export async function hkdf(ikm, salt, info, length) {
  const key = await subtle().importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle().deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, 8 * length);
  return new Uint8Array(bits);
}
