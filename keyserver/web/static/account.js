// Account page: email, key fingerprints, devices, sign out, change password,
// delete account. Waits for the email verification of a new account.
import {
  changePassword, destroyAccount, destroyDevice, ERRNO, fetchKeys, listDevices, prepareStretching, recoveryEmailStatus,
  resendCode, sessionDestroy,
} from "./api.js";
import { fromHex, fromUtf8, toHex } from "./bytes.js";
import { sha256 } from "./kdf.js";
import { clear, establish, load, save } from "./session.js";
import { $, message, notice, onSubmit, show } from "./ui.js";

let s = load();
if (!s?.sessionToken) location.replace("/?notice=signedout");
const token = () => fromHex(s.sessionToken);

notice($("notice"), {
  reset: "Your password is set. Data encrypted with your old class-B key cannot be decrypted any more.",
  changed: "Your password is changed. Your keys are unchanged.",
});

// fingerprint: the first 8 bytes of SHA-256(key), in groups of 4 hex digits.
async function fingerprint(hex) {
  return toHex((await sha256(fromHex(hex))).slice(0, 8)).match(/..../g).join(" ");
}

function fail(err, where = $("account-error")) {
  if (err?.errno === ERRNO.INVALID_TOKEN) { // this session is gone (revoked elsewhere, or reset)
    clear();
    location.replace("/?notice=ended");
    return;
  }
  where.textContent = message(err);
  show(where);
}

let poll;
async function refresh() {
  $("account-email").textContent = fromUtf8(fromHex(s.email));
  if (!s.kA) {
    const st = await recoveryEmailStatus(token());
    if (!st.verified) {
      $("pending-email").textContent = st.email;
      show($("verify-pending"));
      poll = setTimeout(() => refresh().catch(fail), 2000);
      return;
    }
    show($("verify-pending"), false);
    const k = await fetchKeys(fromHex(s.keyFetchToken), fromHex(s.unwrapBKey));
    s = { ...s, verified: true, kA: toHex(k.kA), kB: toHex(k.kB) };
    delete s.keyFetchToken;
    delete s.unwrapBKey;
    save(s);
  }
  $("ka-fp").textContent = await fingerprint(s.kA);
  $("kb-fp").textContent = await fingerprint(s.kB);
  for (const id of ["keys", "devices", "password", "danger"]) show($(id));
  await renderDevices();
  document.body.dataset.ready = "true"; // for tests and screen readers alike: loading is done
}

async function renderDevices() {
  const list = $("device-list");
  show($("devices-error"), false);
  if (s.deviceError) fail(new Error(`This device could not be registered: ${s.deviceError}`), $("devices-error"));
  let devices;
  try {
    devices = await listDevices(token());
  } catch (err) {
    if (err.status === 404) { show($("devices-unavailable")); list.replaceChildren(); return; }
    throw err;
  }
  list.replaceChildren(...devices.map((d) => {
    const li = document.createElement("li");
    li.dataset.id = d.id;
    li.className = d.isCurrentDevice ? "device current" : "device";
    const name = document.createElement("strong");
    name.className = "device-name";
    name.textContent = d.name;
    li.append(name);
    if (d.isCurrentDevice) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "this device";
      li.append(badge);
    } else {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "small revoke";
      b.textContent = "Revoke";
      b.addEventListener("click", async () => {
        b.disabled = true;
        try {
          await destroyDevice(token(), d.id);
          await renderDevices();
        } catch (err) {
          b.disabled = false;
          fail(err, $("devices-error"));
        }
      });
      li.append(b);
    }
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${d.type} · last used ${new Date(d.lastAccessTime).toLocaleString()}`;
    li.append(meta);
    return li;
  }));
}

$("signout").addEventListener("click", async () => {
  clearTimeout(poll);
  try {
    await sessionDestroy(token());
  } catch (err) {
    if (err.errno !== ERRNO.INVALID_TOKEN) return fail(err);
  }
  clear();
  location.assign("/?notice=signedout");
});

$("resend").addEventListener("click", async () => {
  try {
    await resendCode(token());
    $("resend-status").textContent = "Sent. Check your inbox.";
    show($("resend-status"));
  } catch (err) {
    fail(err);
  }
});

onSubmit($("change-password"), async (form, onProgress) => {
  const pw = form.get("new");
  if (pw !== form.get("confirm")) throw new Error("The new passwords do not match.");
  if ([...pw].length < 8) throw new Error("Use at least 8 characters.");
  const r = await changePassword(fromHex(s.email), form.get("old"), pw, onProgress);
  s = await establish(r.session, s.deviceName); // the same kB, re-wrapped for the new password
  location.assign("/account?notice=changed");
});

onSubmit($("destroy"), async (form, onProgress) => {
  await destroyAccount(fromHex(s.email), form.get("password"), onProgress);
  clear();
  location.assign("/?notice=destroyed");
});

// Start the stretching worker while the user types a password.
for (const id of ["change-password", "destroy"]) $(id).addEventListener("focusin", prepareStretching);

if (s?.sessionToken) refresh().catch((err) => fail(err));
