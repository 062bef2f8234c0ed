// The PICL v1 client of the web pages (spec 9.1 flows), the counterpart of
// the Go client in client/. Every request goes through request(): JSON
// bodies, Hawk signing (spec 5) with the page's origin as host and port, the
// server clock from the Timestamp header, and failures as ApiError (spec
// 1.4: a response fails iff its body has a truthy "error", or is not 2xx).
import { concat, fromHex, random, toHex, utf8, xor } from "./bytes.js";
import { header, payloadHash } from "./hawk.js";
import { bundle, deriveToken, unbundle } from "./picl.js";
import * as srp from "./srp.js";
import { PARAMS, stretch } from "./stretch.js";

export const ERRNO = Object.freeze({
  ACCOUNT_EXISTS: 101, UNKNOWN_ACCOUNT: 102, INCORRECT_PASSWORD: 103, UNVERIFIED: 104,
  INVALID_CODE: 105, INVALID_PARAM: 107, MISSING_PARAM: 108, INVALID_TOKEN: 110, INVALID_TIMESTAMP: 111,
  TOO_MANY_REQUESTS: 114, EMAIL_CASE: 120, UNKNOWN_DEVICE: 123, DEVICE_EXISTS: 124, REQUEST_BLOCKED: 125, DISABLED: 127,
  INVALID_RECOVERY_KEY: 128, NO_RECOVERY_KEY: 129, // docs/recovery-key.md RK.3
  SERVICE_UNAVAILABLE: 201,
});

export class ApiError extends Error {
  constructor(status, body, path) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.errno = typeof body?.errno === "number" ? body.errno : 0;
    this.body = body || {};
    this.path = path;
  }
}

const HOST = location.hostname.toLowerCase();
const PORT = Number(location.port) || (location.protocol === "https:" ? 443 : 80);
let clockOffset = 0; // server seconds minus local seconds

const serverNow = () => Math.floor(Date.now() / 1000) + clockOffset;

// request sends one API call; cred = {id, authKey} signs it with Hawk.
export async function request(method, path, { body, cred } = {}, retried = false) {
  const headers = { Accept: "application/json" };
  let text;
  if (body !== undefined) {
    text = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  if (cred) {
    headers.Authorization = await header({
      id: cred.id, key: cred.authKey, method, resource: path, host: HOST, port: PORT, ts: serverNow(),
      hash: text === undefined ? "" : await payloadHash(headers["Content-Type"], text),
    });
  }
  const resp = await fetch(path, { method, headers, body: text, credentials: "omit", cache: "no-store", redirect: "error" });
  const ts = Number(resp.headers.get("Timestamp"));
  if (ts > 0) clockOffset = ts - Math.floor(Date.now() / 1000);
  let obj = null;
  try { obj = await resp.json(); } catch { /* not JSON */ }
  if (obj?.error || !resp.ok) {
    const err = new ApiError(resp.status, obj, path);
    // A stale clock: the server told us its time; sign again once.
    if (err.errno === ERRNO.INVALID_TIMESTAMP && !retried) return request(method, path, { body, cred }, true);
    throw err;
  }
  if (obj === null || typeof obj !== "object") throw new Error(`${path}: response is not a JSON object`);
  return obj;
}

// credentials derives the Hawk credentials of a token seed (spec 4.1).
export async function credentials(tokenType, seed) {
  const t = await deriveToken(tokenType, seed);
  return { id: toHex(t.tokenId), authKey: t.authKey, bundleKey: t.bundleKey };
}

const hexField = (obj, name, n) => {
  try { return fromHex(obj[name], n); } catch { throw new Error(`malformed response: ${name}`); }
};

const newWorker = () => new Worker(new URL("./stretch-worker.js", import.meta.url), { type: "module" });
let spare = null; // a worker started ahead, its modules loaded while the user types

// prepareStretching starts the worker of the next stretchPassword early.
export function prepareStretching() {
  try {
    spare ??= newWorker();
  } catch { /* stretchPassword falls back */ }
}

// stretchPassword runs stretch() in a module worker (falling back to this
// thread) and reports progress fractions to onProgress.
export function stretchPassword(email, password, salt, onProgress) {
  let worker = spare;
  spare = null;
  try {
    worker ??= newWorker();
  } catch {
    return stretch(email, password, salt, onProgress);
  }
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => {
      if (data.progress !== undefined) return onProgress?.(data.progress);
      worker.terminate();
      if (data.error) reject(new Error(data.error));
      else resolve(data.result);
    };
    worker.onerror = (e) => { worker.terminate(); reject(new Error(e.message || "stretching worker failed")); };
    worker.postMessage({ email, password: password.slice(), salt });
  });
}

// newCredentials picks fresh salts, stretches and computes the verifier
// (create, change password, reset).
async function newCredentials(email, password, onProgress) {
  const passwordSalt = random(32), srpSalt = random(32);
  const { srpPw, unwrapBKey } = await stretchPassword(email, password, passwordSalt, onProgress);
  const verifier = await srp.verifier(email, srpPw, srpSalt);
  return {
    passwordSalt, srpSalt, verifier, unwrapBKey,
    // what a sign-in right after needs, so it does not stretch again
    known: { passwordSalt, srpPw, unwrapBKey },
    stretching: { ...PARAMS, salt: toHex(passwordSalt) },
  };
}

// createAccount: email and password are strings; returns uid and the
// stretched values for the sign-in that follows.
export async function createAccount(email, password, onProgress) {
  const e = utf8(email);
  const cr = await newCredentials(e, utf8(password), onProgress);
  const resp = await request("POST", "/v1/account/create", {
    body: {
      email: toHex(e),
      srp: { type: srp.TYPE, verifier: toHex(cr.verifier), salt: toHex(cr.srpSalt) },
      passwordStretching: cr.stretching,
    },
  });
  return { uid: resp.uid, known: cr.known };
}

// authStart retries once with the stored email bytes on 120 (spec 1.3).
// unblockCode (8 digits, spec 14.3) lifts a 125 block.
async function authStart(email, unblockCode) {
  const body = (hex) => (unblockCode ? { email: hex, unblockCode } : { email: hex });
  try {
    return { email, resp: await request("POST", "/v1/auth/start", { body: body(toHex(email)) }) };
  } catch (err) {
    if (err.errno !== ERRNO.EMAIL_CASE) throw err;
    const stored = fromHex(err.body.email);
    return { email: stored, resp: await request("POST", "/v1/auth/start", { body: body(err.body.email) }) };
  }
}

// sendUnblockCode mails a code that lifts a 125 block (spec 14.3),
// retrying with the stored email on 120.
export async function sendUnblockCode(email) {
  try {
    await request("POST", "/v1/account/login/send_unblock_code", { body: { email: toHex(utf8(email)) } });
  } catch (err) {
    if (err.errno !== ERRNO.EMAIL_CASE) throw err;
    await request("POST", "/v1/account/login/send_unblock_code", { body: { email: err.body.email } });
  }
}

// signIn runs auth/start and auth/finish: returns the exact email bytes, the
// authToken seed and unwrapBKey. known skips stretching when its salt
// matches; unblockCode is sent with auth/start when given.
export async function signIn(email, password, onProgress, known, unblockCode) {
  const start = await authStart(typeof email === "string" ? utf8(email) : email, unblockCode);
  const r = start.resp;
  const ps = r.passwordStretching || {};
  for (const [name, value] of Object.entries(PARAMS)) {
    if (ps[name] !== value) throw new Error(`unsupported passwordStretching.${name}`);
  }
  if (r.srp?.type !== srp.TYPE) throw new Error("unsupported srp.type");
  const salt = hexField(ps, "salt", 32), srpSalt = hexField(r.srp, "salt", 32), B = hexField(r.srp, "B", 256);
  hexField(r, "srpToken", 32);
  let s = known && toHex(known.passwordSalt) === toHex(salt) ? known : null;
  if (!s) s = await stretchPassword(start.email, utf8(password), salt, onProgress);
  else onProgress?.(1);
  const { A, M1, K } = await srp.clientProof(start.email, s.srpPw, srpSalt, B);
  const fin = await request("POST", "/v1/auth/finish", { body: { srpToken: r.srpToken, A: toHex(A), M: toHex(M1) } });
  const authToken = await unbundle(K, "auth/finish", hexField(fin, "bundle", 64));
  return { email: start.email, authToken, unwrapBKey: s.unwrapBKey };
}

// sessionCreate exchanges an authToken (consumed) for session and keyFetch tokens.
export async function sessionCreate(authToken) {
  const cred = await credentials("authToken", authToken);
  const r = await request("POST", "/v1/session/create", { cred });
  const seeds = await unbundle(cred.bundleKey, "session/create", hexField(r, "bundle", 96));
  hexField(r, "uid", 16);
  return { uid: r.uid, verified: r.verified === true, keyFetchToken: seeds.slice(0, 32), sessionToken: seeds.slice(32) };
}

// login = signIn + sessionCreate.
export async function login(email, password, onProgress, known, unblockCode) {
  const auth = await signIn(email, password, onProgress, known, unblockCode);
  const s = await sessionCreate(auth.authToken);
  return { ...s, email: auth.email, unwrapBKey: auth.unwrapBKey };
}

// fetchKeys uses a keyFetchToken (consumed) and returns kA, wrapKb and kB.
export async function fetchKeys(keyFetchToken, unwrapBKey) {
  const cred = await credentials("keyFetchToken", keyFetchToken);
  const r = await request("GET", "/v1/account/keys", { cred });
  const plain = await unbundle(cred.bundleKey, "account/keys", hexField(r, "bundle", 96));
  const kA = plain.slice(0, 32), wrapKb = plain.slice(32);
  return { kA, wrapKb, kB: unwrapBKey ? xor(wrapKb, unwrapBKey) : null };
}

const sessionCred = (sessionToken) => credentials("sessionToken", sessionToken);

export const sessionDestroy = async (sessionToken) =>
  request("POST", "/v1/session/destroy", { cred: await sessionCred(sessionToken) });

export const recoveryEmailStatus = async (sessionToken) =>
  request("GET", "/v1/recovery_email/status", { cred: await sessionCred(sessionToken) });

export const resendCode = async (sessionToken) =>
  request("POST", "/v1/recovery_email/resend_code", { body: {}, cred: await sessionCred(sessionToken) });

export const verifyCode = (uid, code) =>
  request("POST", "/v1/recovery_email/verify_code", { body: { uid, code } });

// Devices (spec 6.5).
export const registerDevice = async (sessionToken, name, type = "web") =>
  request("POST", "/v1/account/device", { body: { name, type }, cred: await sessionCred(sessionToken) });

export const listDevices = async (sessionToken) =>
  (await request("GET", "/v1/account/devices", { cred: await sessionCred(sessionToken) })).devices || [];

export const renameDevice = async (sessionToken, id, name) =>
  request("POST", "/v1/account/device", { body: { id, name }, cred: await sessionCred(sessionToken) });

export const destroyDevice = async (sessionToken, id) =>
  request("POST", "/v1/account/device/destroy", { body: { id }, cred: await sessionCred(sessionToken) });

// accountEvents: the account's own recent events (spec 10.4), newest first.
export const accountEvents = async (sessionToken) =>
  (await request("GET", "/v1/account/events", { cred: await sessionCred(sessionToken) })).events || [];

// Recovery key (docs/recovery-key.md RK.4). id and data are bytes.
export const createRecoveryKey = async (sessionToken, id, data) =>
  request("POST", "/v1/recoveryKey", {
    body: { recoveryKeyId: toHex(id), recoveryData: toHex(data) }, cred: await sessionCred(sessionToken),
  });

// recoveryKeyStatus: {exists, createdAt (ms, when it exists)}.
export async function recoveryKeyStatus(sessionToken) {
  const r = await request("GET", "/v1/recoveryKey", { cred: await sessionCred(sessionToken) });
  if (typeof r.exists !== "boolean") throw new Error("malformed response: exists");
  return { exists: r.exists, createdAt: r.exists && typeof r.createdAt === "number" ? r.createdAt : null };
}

export const destroyRecoveryKey = async (sessionToken) =>
  request("POST", "/v1/recoveryKey/destroy", { cred: await sessionCred(sessionToken) });

// recoveryKeyData proves the recovery key's id with an accountResetToken
// (not consumed) and returns the account's uid and recoveryData (bytes);
// 400/128: not this account's key, 400/129: the account has none.
export async function recoveryKeyData(accountResetToken, id) {
  const r = await request("POST", "/v1/recoveryKey/data", {
    body: { recoveryKeyId: toHex(id) }, cred: await credentials("accountResetToken", accountResetToken),
  });
  return { uid: hexField(r, "uid", 16), recoveryData: hexField(r, "recoveryData", 60) };
}

// reset calls /v1/account/reset with new credentials for password; wrapKbFor
// maps the new unwrapBKey to the wrapKb to store. keepRecoveryKey (RK.6)
// only when the reset keeps kB. Returns what a sign-in with the new
// password can reuse.
async function reset(accountResetToken, email, password, wrapKbFor, onProgress, keepRecoveryKey = false) {
  const cr = await newCredentials(email, utf8(password), onProgress);
  const cred = await credentials("accountResetToken", accountResetToken);
  const plain = concat(wrapKbFor(cr.unwrapBKey), cr.verifier);
  const b = await bundle(cred.bundleKey, "account/reset", plain);
  plain.fill(0);
  const body = { bundle: toHex(b), srp: { type: srp.TYPE, salt: toHex(cr.srpSalt) }, passwordStretching: cr.stretching };
  if (keepRecoveryKey) body.keepRecoveryKey = true;
  await request("POST", "/v1/account/reset", { body, cred });
  return cr.known;
}

// changePassword keeps kA and kB (spec 9.1, 4.3): sign in with the old
// password, password/change/start, fetch the keys, reset with
// wrapKb' = kB XOR unwrapBKey'. Every session ends; it returns a new login
// with the new password (without a third stretching) and the old kB. The
// reset keeps kB, so it keeps the recovery key too (keepRecoveryKey, RK.6).
export async function changePassword(email, oldPassword, newPassword, onProgress) {
  const half = (base) => onProgress && ((f) => onProgress(base + f / 2));
  const auth = await signIn(email, oldPassword, half(0));
  const cred = await credentials("authToken", auth.authToken);
  const r = await request("POST", "/v1/password/change/start", { cred });
  const seeds = await unbundle(cred.bundleKey, "password/change", hexField(r, "bundle", 96));
  const keys = await fetchKeys(seeds.slice(0, 32), auth.unwrapBKey);
  const known = await reset(seeds.slice(32), auth.email, newPassword, (u) => xor(keys.kB, u), half(0.5), true);
  const session = await login(auth.email, newPassword, null, known);
  return { session, kB: keys.kB };
}

// destroyAccount signs in again (the password confirms) and destroys.
export async function destroyAccount(email, password, onProgress) {
  const auth = await signIn(email, password, onProgress);
  await request("POST", "/v1/account/destroy", { cred: await credentials("authToken", auth.authToken) });
}

// Forgotten password (spec 6.7). sendCode retries with the stored email on 120.
export async function forgotSendCode(email) {
  let e = utf8(email);
  let r;
  try {
    r = await request("POST", "/v1/password/forgot/send_code", { body: { email: toHex(e) } });
  } catch (err) {
    if (err.errno !== ERRNO.EMAIL_CASE) throw err;
    e = fromHex(err.body.email);
    r = await request("POST", "/v1/password/forgot/send_code", { body: { email: err.body.email } });
  }
  return { email: e, token: hexField(r, "forgotPasswordToken", 32), ttl: r.ttl, codeLength: r.codeLength, tries: r.tries };
}

export async function forgotResendCode(token, email) {
  const r = await request("POST", "/v1/password/forgot/resend_code",
    { body: { email: toHex(email) }, cred: await credentials("forgotPasswordToken", token) });
  return { ttl: r.ttl, codeLength: r.codeLength, tries: r.tries };
}

// forgotVerifyCode exchanges the mailed code for an accountResetToken
// (the forgotPasswordToken is spent by it).
export async function forgotVerifyCode(token, code) {
  const r = await request("POST", "/v1/password/forgot/verify_code",
    { body: { code }, cred: await credentials("forgotPasswordToken", token) });
  return hexField(r, "accountResetToken", 32);
}

// resetPassword sets newPassword with an accountResetToken (consumed) and
// signs in. Without kB it sends wrapKb = 32 zero bytes (the server picks a
// new one: kB changes, kA stays); with the kB a recovery key gave back
// (RK.5) it sends wrapKb = kB XOR unwrapBKey', so kB stays. The reset
// deletes the recovery key either way (RK.6).
export async function resetPassword(accountResetToken, email, newPassword, kB, onProgress) {
  const wrapKbFor = kB ? (u) => xor(kB, u) : () => new Uint8Array(32);
  const known = await reset(accountResetToken, email, newPassword, wrapKbFor, onProgress);
  return login(email, newPassword, null, known);
}

// forgotReset verifies the code, resets with wrapKb = 32 zero bytes and signs in.
export async function forgotReset(token, email, code, newPassword, onProgress) {
  return resetPassword(await forgotVerifyCode(token, code), email, newPassword, null, onProgress);
}
