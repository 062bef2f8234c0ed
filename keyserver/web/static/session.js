// The signed-in session of this tab. Keys and tokens live in memory and in
// sessionStorage (this tab only, gone when it closes); never in cookies or
// localStorage.
import { fetchKeys, registerDevice } from "./api.js";
import { toHex } from "./bytes.js";

const KEY = "keyserver.session";

export function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export const save = (s) => sessionStorage.setItem(KEY, JSON.stringify(s));

export function clear() {
  sessionStorage.removeItem(KEY);
}


export function defaultDeviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox"
    : /Chromium\//.test(ua) ? "Chromium" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Web browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows"
    : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
  return os ? `${browser} on ${os}` : browser;
}

// establish stores a fresh login (api.login's result) for this tab: it
// fetches the keys if the account is verified (otherwise the keyFetchToken
// and unwrapBKey wait here until it is: a keyFetchToken is spent even by a
// 104 answer) and registers the device when the server has the registry.
export async function establish(s, deviceName) {
  const stored = {
    email: toHex(s.email), uid: s.uid, sessionToken: toHex(s.sessionToken), verified: s.verified,
    deviceName: deviceName || defaultDeviceName(),
  };
  if (s.verified) {
    const k = await fetchKeys(s.keyFetchToken, s.unwrapBKey);
    stored.kA = toHex(k.kA);
    stored.kB = toHex(k.kB);
  } else {
    stored.keyFetchToken = toHex(s.keyFetchToken);
    stored.unwrapBKey = toHex(s.unwrapBKey);
  }
  save(stored);
  try {
    stored.deviceId = (await registerDevice(s.sessionToken, stored.deviceName)).id;
  } catch (err) {
    // 404: a server without the device registry; anything else is shown
    // on the account page, the session itself is fine.
    if (err.status !== 404) stored.deviceError = err.message;
  }
  save(stored);
  return stored;
}
