// Hawk 1 request signing as in hawk@1.1.2 (spec 5), algorithm sha256.
import { random, toBase64, utf8 } from "./bytes.js";
import { hmac, sha256 } from "./kdf.js";

// payloadHash = base64(H("hawk.1.payload\n" + contentType + "\n" + body + "\n")),
// contentType without parameters, lower case.
export async function payloadHash(contentType, body) {
  const ct = (contentType || "").split(";")[0].trim().toLowerCase();
  return toBase64(await sha256(utf8(`hawk.1.payload\n${ct}\n${body}\n`)));
}

// header returns the Authorization value for a request. opts: id (hex
// tokenId), key (authKey bytes), method, resource (path and query), host,
// port, ts (seconds), and optionally nonce, hash, ext.
export async function header({ id, key, method, resource, host, port, ts, nonce, hash = "", ext = "" }) {
  nonce ??= toBase64(random(9)).replace(/\+/g, "-").replace(/\//g, "_");
  const normalized = `hawk.1.header\n${ts}\n${nonce}\n${method.toUpperCase()}\n${resource}\n` +
    `${host.toLowerCase()}\n${port}\n${hash}\n${ext}\n`;
  const mac = toBase64(await hmac(key, utf8(normalized)));
  let h = `Hawk id="${id}", ts="${ts}", nonce="${nonce}"`;
  if (hash) h += `, hash="${hash}"`;
  if (ext) h += `, ext="${ext}"`;
  return h + `, mac="${mac}"`;
}
