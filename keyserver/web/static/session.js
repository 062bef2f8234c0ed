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


// deviceName names a browser as people say it, "Chromium on Linux", from
// the user agent: the client hints (navigator.userAgentData, Chromium
// browsers in secure contexts) when there are any, else the UA string.
export function deviceName(ua = navigator.userAgent, data = navigator.userAgentData) {
  const brands = (data?.brands || []).map((b) => b.brand);
  const brand = [["Microsoft Edge", "Edge"], ["Opera", "Opera"], ["Brave", "Brave"], ["Vivaldi", "Vivaldi"],
    ["Samsung Internet", "Samsung Internet"], ["Google Chrome", "Chrome"], ["Chromium", "Chromium"]]
    .find(([b]) => brands.includes(b))?.[1];
  const browser = brand || (/Edg(A|iOS)?\//.test(ua) ? "Edge" : /OPR\//.test(ua) ? "Opera"
    : /Firefox\/|FxiOS\//.test(ua) ? "Firefox" : /SamsungBrowser\//.test(ua) ? "Samsung Internet"
    : /Chromium\//.test(ua) ? "Chromium" : /Chrome\/|CriOS\//.test(ua) ? "Chrome"
    : /Safari\//.test(ua) ? "Safari" : "Web browser");
  const platforms = { "macOS": "macOS", "Windows": "Windows", "Linux": "Linux", "Android": "Android",
    "Chrome OS": "ChromeOS", "Chromium OS": "ChromeOS", "iOS": "iOS" };
  const os = platforms[data?.platform] || (/Android/.test(ua) ? "Android" : /iPhone|iPod/.test(ua) ? "iOS"
    : /iPad/.test(ua) ? "iPadOS" : /Windows/.test(ua) ? "Windows" : /Mac OS X|Macintosh/.test(ua) ? "macOS"
    : /CrOS/.test(ua) ? "ChromeOS" : /Linux/.test(ua) ? "Linux" : "");
  return os ? `${browser} on ${os}` : browser;
}

// signOutTab forgets this tab's session and shows the sign-in page with
// a notice (signedout, revoked, disabled, destroyed).
export function signOutTab(reason) {
  clear();
  location.replace(`/?notice=${reason}`);
}

// establish stores a fresh login (api.login's result) for this tab: it
// fetches the keys if the account is verified (otherwise the keyFetchToken
// and unwrapBKey wait here until it is: a keyFetchToken is spent even by a
// 104 answer) and registers the device when the server has the registry.
export async function establish(s, name) {
  const stored = {
    email: toHex(s.email), uid: s.uid, sessionToken: toHex(s.sessionToken), verified: s.verified,
    deviceName: name || deviceName(),
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
    if (err.status !== 404) stored.deviceError = true;
  }
  save(stored);
  return stored;
}
