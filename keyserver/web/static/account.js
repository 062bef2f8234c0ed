// Account page: email, key check codes, recovery key (create, replace,
// delete; docs/recovery-key.md), devices (rename this one, remove
// others), recent activity, sign out, change password, delete account.
// Waits for the email verification of a new account, and watches the
// session: a device removed elsewhere, or a disabled account, signs this
// tab out within a few seconds.
import {
  accountEvents, changePassword, createRecoveryKey, destroyAccount, destroyDevice, destroyRecoveryKey, ERRNO, fetchKeys,
  listDevices, prepareStretching, recoveryEmailStatus, recoveryKeyStatus, renameDevice, resendCode, sessionDestroy,
} from "./api.js";
import { fromHex, fromUtf8, toHex } from "./bytes.js";
import { sha256 } from "./kdf.js";
import { keyGroups, makeRecoveryKey } from "./recoverykey.js";
import { establish, load, save, signOutTab } from "./session.js";
import {
  $, check, fillUsername, notice, onClick, onSubmit, prepareFields, show, showError, startAction, tryAgain,
} from "./ui.js";

let s = load();
if (!s?.sessionToken) location.replace("/?notice=signedout");
const token = () => fromHex(s.sessionToken);
const WATCH_MS = 3000; // how often the session is checked (one cheap GET)
const EVENTS_SHOWN = 10;

notice($("notice"), {
  reset: "Your new password is set. Data protected by your old password key cannot be read any more. " +
    "To keep it the next time, create a recovery key below.",
  recovered: "Your new password is set, and your recovery key kept your data: your keys are the same as before. " +
    "That recovery key is now used up. Create a new one below and keep it safe.",
  changed: "Your password is changed. Your keys and your data stay the same.",
});

// fingerprint: the first 8 bytes of SHA-256(key), in groups of 4 hex digits.
async function fingerprint(hex) {
  return toHex((await sha256(fromHex(hex))).slice(0, 8)).match(/..../g).join(" ");
}

const when = (ms) => new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

// breakable shows an email address that may wrap after its dots and "@"
// rather than anywhere (a narrow screen).
function breakable(e, text) {
  const parts = text.split(/(?<=[.@])/);
  e.replaceChildren(...parts.flatMap((p, i) => (i ? [el("wbr"), p] : [p])));
}

// busy: an action that ends or replaces the session is running (the
// watch then stays quiet).
let busy = false;
let timer = null;

// gone signs the tab out when err says that its session is over (110:
// removed elsewhere, reset, signed out) or the account disabled (127).
function gone(err) {
  if (err?.errno !== ERRNO.INVALID_TOKEN && err?.errno !== ERRNO.DISABLED) return false;
  clearInterval(timer);
  busy = true;
  signOutTab(err.errno === ERRNO.DISABLED ? "disabled" : "revoked");
  return true;
}

function fail(err, where = $("account-error")) {
  if (!gone(err)) showError(err, where);
}

// Loading, and waiting for the verification.
async function start() {
  const email = fromUtf8(fromHex(s.email));
  breakable($("account-email"), email);
  fillUsername(email);
  if (!s.kA) {
    const st = await recoveryEmailStatus(token());
    if (!st.verified) {
      breakable($("pending-email"), st.email);
      show($("verify-pending"));
      return;
    }
    await keysAfterVerification();
  }
  await showAccount();
}

async function keysAfterVerification() {
  const k = await fetchKeys(fromHex(s.keyFetchToken), fromHex(s.unwrapBKey));
  s = { ...s, verified: true, kA: toHex(k.kA), kB: toHex(k.kB) };
  delete s.keyFetchToken;
  delete s.unwrapBKey;
  save(s);
}

async function showAccount() {
  show($("verify-pending"), false);
  $("ka-fp").textContent = await fingerprint(s.kA);
  $("kb-fp").textContent = await fingerprint(s.kB);
  for (const id of ["keys", "recovery", "devices", "activity", "password", "danger"]) show($(id));
  await renderRecovery().catch((err) => fail(err, $("recovery-error")));
  await renderLists();
  document.body.dataset.ready = "true"; // for tests: loading is done
}

async function renderLists() {
  const devices = await renderDevices().catch((err) => { fail(err, $("devices-error")); return []; });
  await renderEvents(devices).catch((err) => fail(err, $("events-error")));
}

// The watch: recovery_email/status every few seconds and when the tab
// gets the focus; it also notices the verification of a new account.
let ticking = false;
async function tick() {
  if (busy || ticking || !s?.sessionToken) return;
  ticking = true;
  const current = s.sessionToken;
  try {
    const st = await recoveryEmailStatus(token());
    if (!s.kA && st.verified && !busy) {
      await keysAfterVerification();
      await showAccount();
    }
  } catch (err) {
    if (!busy && current === s.sessionToken) gone(err); // anything else: try again at the next tick
  } finally {
    ticking = false;
  }
}

function watch() {
  timer = setInterval(tick, WATCH_MS);
  addEventListener("focus", () => {
    tick();
    // the lists may have changed elsewhere; not while the user edits them
    if (document.body.dataset.ready && !document.querySelector("#device-list form, #device-list .confirm")) {
      renderLists();
    }
    if (document.body.dataset.ready && recoveryIdle()) renderRecovery().catch((err) => fail(err, $("recovery-error")));
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
}

// Recovery key (docs/recovery-key.md): made here from the kB this tab
// holds, shown once, replaced or deleted after a confirmation.
let recovery = null; // {exists, createdAt}, null while unknown or not offered
let shownKey = ""; // the key string while it is shown (once)

const recoveryIdle = () => $("recovery-new").hidden && $("recovery-confirm").hidden;

async function renderRecovery() {
  let st;
  try {
    st = await recoveryKeyStatus(token());
  } catch (err) {
    if (err.status === 404) { // a server without recovery keys
      recovery = null;
      show($("recovery-unavailable"));
      for (const id of ["recovery-state", "recovery-actions"]) show($(id), false);
      return;
    }
    throw err;
  }
  recovery = st;
  $("recovery-state").textContent = !st.exists
    ? "You have no recovery key. Without one, your most private data is lost if you forget your password."
    : st.createdAt ? `You have a recovery key, created on ${when(st.createdAt)}.` : "You have a recovery key.";
  $("recovery-state").dataset.exists = String(st.exists);
  $("recovery-create").textContent = st.exists ? "Create a new recovery key" : "Create a recovery key";
  show($("recovery-delete"), st.exists);
  show($("recovery-actions"));
}

function recoveryStatus(text) {
  const st = $("recovery-status");
  st.textContent = text;
  show(st);
}

// askRecovery shows the confirmation of replacing or deleting the key,
// with the focus on Cancel (as the device list does).
let asked = null;
function askRecovery(what, from) {
  asked = { what, from };
  $("recovery-confirm-text").textContent = what === "replace"
    ? "Create a new recovery key? The one you have stops working at once: only the new one can keep your data after a password reset."
    : "Delete your recovery key? It stops working at once. If you then forget your password, your most private data is lost.";
  $("recovery-confirm-yes").textContent = what === "replace" ? "Create a new key" : "Delete recovery key";
  show($("recovery-actions"), false);
  show($("recovery-confirm"));
  $("recovery-confirm-no").focus();
}

function closeAsk() {
  show($("recovery-confirm"), false);
  show($("recovery-actions"));
  const from = asked?.from;
  asked = null;
  return from;
}

// recoveryText is what the saved text file says.
function recoveryText(keyString, created) {
  const email = fromUtf8(fromHex(s.email));
  return [
    "Recovery key for your account at keyserver",
    "",
    `Account: ${email}`,
    `Server: ${location.origin}`,
    `Created: ${when(created)}`,
    "",
    keyString,
    "",
    "Keep this somewhere safe, away from this device: print it, or copy this file to a place only you",
    "can reach, and delete it here. If you forget your password, choose “Forgot your password?”",
    "when you sign in and type this key: your most private data is then kept.",
    "Anyone with this key and access to your email could read that data. Do not share it.",
    "",
  ].join("\n");
}

function showKey(keyString) {
  shownKey = keyString;
  const created = Date.now();
  const groups = keyGroups(keyString);
  // one span per group, so that the key wraps between groups only
  $("recovery-key").replaceChildren(...groups.flatMap((g, i) => [...(i ? [" "] : []), el("span", { class: "group" }, g)]));
  $("recovery-print-heading").textContent = `Recovery key for ${fromUtf8(fromHex(s.email))} at ${location.origin}, ` +
    `created on ${when(created)}`;
  $("recovery-download").href = "data:text/plain;charset=utf-8," + encodeURIComponent(recoveryText(keyString, created));
  $("recovery-saved").checked = false;
  $("recovery-tool-status").textContent = "";
  show($("recovery-actions"), false);
  show($("recovery-state"), false);
  show($("recovery-new"));
  $("recovery-new-title").focus();
}

function hideKey() {
  shownKey = "";
  $("recovery-key").replaceChildren();
  $("recovery-print-heading").textContent = "";
  $("recovery-download").href = "/account";
  $("recovery-tool-status").textContent = "";
  show($("recovery-new"), false);
  show($("recovery-state"));
  show($("recovery-actions"));
}

async function createKey() {
  const k = await makeRecoveryKey(fromHex(s.uid), fromHex(s.kB));
  try {
    await createRecoveryKey(token(), k.id, k.data);
  } finally {
    k.R.fill(0);
  }
  showKey(k.keyString);
}

onClick($("recovery-create"), async () => {
  if (recovery?.exists) askRecovery("replace", $("recovery-create"));
  else await createKey();
}, $("recovery-error"), gone);

onClick($("recovery-delete"), async () => askRecovery("delete", $("recovery-delete")), $("recovery-error"), gone);

$("recovery-confirm-no").addEventListener("click", () => closeAsk()?.focus());

onClick($("recovery-confirm-yes"), async () => {
  const what = asked?.what;
  if (what === "replace") {
    await createKey();
    show($("recovery-confirm"), false);
    asked = null;
  } else if (what === "delete") {
    await destroyRecoveryKey(token());
    closeAsk();
    await renderRecovery();
    recoveryStatus("Your recovery key was deleted. It cannot be used any more.");
    $("recovery-create").focus();
  }
}, $("recovery-error"), gone);

onClick($("recovery-copy"), async () => {
  try {
    await navigator.clipboard.writeText(shownKey);
    $("recovery-tool-status").textContent = "Copied. Paste it where you keep important things safe, not only on this device.";
  } catch {
    const r = document.createRange();
    r.selectNodeContents($("recovery-key"));
    getSelection().removeAllRanges();
    getSelection().addRange(r);
    $("recovery-tool-status").textContent = "This browser did not let the page copy. The key is selected: copy it with your keyboard or the menu.";
  }
}, $("recovery-error"));

// Printing shows only the key (and what it is for).
$("recovery-print").addEventListener("click", () => {
  document.body.classList.add("printing-key");
  window.print();
});
addEventListener("beforeprint", () => { if (shownKey) document.body.classList.add("printing-key"); });
addEventListener("afterprint", () => document.body.classList.remove("printing-key"));

onSubmit($("recovery-saved-form"), async (form) => {
  check(["recovery-saved", form.get("saved") !== null, "Tick the box once your recovery key is stored somewhere safe."]);
  hideKey();
  await renderRecovery();
  recoveryStatus("Your recovery key is ready. You need it only if you forget your password.");
  $("recovery-title").focus();
}, { onError: gone });

// Devices.
const TYPES = { web: "Web browser", desktop: "Computer", mobile: "Phone", tablet: "Tablet", vr: "VR headset", tv: "TV",
  cli: "Command line" };

async function renderDevices() {
  const list = $("device-list");
  if (s.deviceError) fail(new Error("This device could not be added to the list of devices."), $("devices-error"));
  let devices;
  try {
    devices = await listDevices(token());
  } catch (err) {
    if (err.status === 404) { show($("devices-unavailable")); list.replaceChildren(); return []; }
    throw err;
  }
  list.replaceChildren(...devices.map(deviceItem));
  return devices;
}

function deviceItem(d) {
  const nameId = `device-${d.id}-name`;
  const li = el("li", { class: d.isCurrentDevice ? "device current" : "device", "data-id": d.id });
  const name = el("span", { class: "device-name", id: nameId }, d.name);
  const meta = el("span", { class: "meta" }, `${TYPES[d.type] || d.type} · last used ${when(d.lastAccessTime)}`);
  const actions = el("div", { class: "device-actions" });
  li.append(name);
  if (d.isCurrentDevice) li.append(el("span", { class: "badge" }, "this device"));
  li.append(meta, actions);
  if (d.isCurrentDevice) {
    const b = el("button", { type: "button", class: "small secondary rename-start", "aria-describedby": nameId }, "Rename");
    b.addEventListener("click", () => renameForm(d, li, actions));
    actions.append(b);
  } else {
    const b = el("button", { type: "button", class: "small secondary revoke", "aria-describedby": nameId }, "Remove");
    b.addEventListener("click", () => confirmRevoke(d, li, actions));
    actions.append(b);
  }
  return li;
}

function renameForm(d, li, actions) {
  startAction();
  const input = el("input", { id: "rename-name", name: "name", type: "text", maxlength: "255", autocomplete: "off" });
  input.value = d.name;
  const cancel = el("button", { type: "button", class: "small secondary" }, "Cancel");
  const form = el("form", { class: "rename", id: "rename-form" },
    el("label", { for: "rename-name" }, "Name of this device"), input,
    el("button", { type: "submit", class: "small", id: "rename-save" }, "Save"), cancel,
    el("p", { class: "error", role: "alert", hidden: true }));
  actions.replaceChildren(form);
  prepareFields(form);
  cancel.addEventListener("click", () => { li.replaceWith(deviceItem(d)); });
  onSubmit(form, async (data) => {
    const name = data.get("name").trim();
    check(
      ["rename-name", name !== "", "Enter a name."],
      ["rename-name", [...name].length <= 255, "Use at most 255 characters."],
      // eslint-disable-next-line no-control-regex
      ["rename-name", !/[\u0000-\u001f\u007f-\u009f]/.test(name), "Use letters, digits and punctuation only."],
    );
    const saved = await renameDevice(token(), d.id, name);
    s.deviceName = saved.name;
    save(s);
    await renderLists();
    status(`This device is now called “${saved.name}”.`);
  }, { fieldFor: (err) => (err.body?.param === "name" ? "rename-name" : null), onError: gone });
  input.focus();
  input.select();
}

function confirmRevoke(d, li, actions) {
  startAction();
  const textId = `device-${d.id}-confirm`;
  const yes = el("button", { type: "button", class: "small danger confirm-revoke" }, "Remove device");
  const no = el("button", { type: "button", class: "small secondary cancel-revoke" }, "Cancel");
  const box = el("div", { class: "confirm", role: "group", "aria-labelledby": textId },
    el("p", { id: textId }, `Remove “${d.name}”? It is signed out at once and needs your password to sign in again.`),
    yes, no);
  actions.replaceChildren(box);
  no.addEventListener("click", () => {
    const item = deviceItem(d);
    li.replaceWith(item);
    item.querySelector("button.revoke").focus();
  });
  onClick(yes, async () => {
    await destroyDevice(token(), d.id);
    await renderLists();
    status(`“${d.name}” was removed and signed out.`);
  }, $("devices-error"), gone);
  no.focus();
}

function status(text) {
  let st = $("devices-status");
  if (!st) {
    st = el("p", { id: "devices-status", class: "status result", role: "status" });
    $("device-list").after(st);
  }
  st.textContent = text;
  st.hidden = false;
}

// Recent activity (spec 10.4), in words.
const ACTIONS = {
  "account.create": "Account created",
  "account.verify": ["Email address confirmed", "Email confirmation failed: wrong link"],
  "account.reset": "New password set",
  "account.recover": ["Account recovered by email", "Account recovery refused"],
  "account.destroy": "Account deleted",
  "login": ["Signed in", "Sign-in failed: wrong password"],
  "session.destroy": "Signed out",
  "password.change.start": "Password change started",
  "password.forgot.send_code": "Password reset code emailed",
  "password.forgot.resend_code": "Password reset code emailed again",
  "password.forgot.verify_code": ["Password reset code accepted", "Wrong password reset code entered"],
  "recovery_email.resend_code": "Confirmation email sent again",
  "certificate.sign": "A device proved its sign-in to an app",
  "device.register": "Device added",
  "device.update": "Device renamed",
  "device.destroy": "Device removed",
  "admin.device.revoke": "Device removed by an administrator",
  "admin.sessions.revoke": "All devices signed out by an administrator",
  "admin.account.disable": "Account disabled by an administrator",
  "admin.account.enable": "Account enabled again by an administrator",
  "admin.blocks.clear": "Sign-in blocks lifted by an administrator",
  "blocked": "Sign-in paused after too many attempts",
  "login.send_unblock_code": "Unblock code emailed",
  "login.unblock": "Sign-in unblocked with an emailed code",
  "recoveryKey.create": "Recovery key created",
  "recoveryKey.destroy": "Recovery key deleted",
  "recoveryKey.data": ["Recovery key entered to set a new password", "Wrong recovery key entered"],
};
// Steps of a sign-in that "Signed in" already says.
const QUIET = new Set(["session.create", "keys.fetch"]);

function eventWords(e) {
  const w = ACTIONS[e.action];
  if (Array.isArray(w)) return e.outcome === "failure" ? w[1] : w[0];
  if (w) return e.outcome === "failure" ? `${w} (failed)` : w;
  return e.action.replace(/[._]/g, " ");
}

let showAllEvents = false;
$("events-more").addEventListener("click", () => {
  showAllEvents = true;
  renderEvents().catch((err) => fail(err, $("events-error")));
});

let lastDevices = [];
async function renderEvents(devices = lastDevices) {
  lastDevices = devices;
  let events;
  try {
    events = (await accountEvents(token())).filter((e) => !QUIET.has(e.action));
  } catch (err) {
    if (err.status === 404) { show($("events-unavailable")); return; }
    throw err;
  }
  const names = new Map(devices.map((d) => [d.id, d.name]));
  const shown = showAllEvents ? events : events.slice(0, EVENTS_SHOWN);
  $("event-list").replaceChildren(...shown.map((e) => {
    const parts = [el("time", { datetime: new Date(e.time).toISOString() }, when(e.time))];
    if (e.ip) parts.push(` · from ${e.ip}`);
    if (e.deviceId && names.has(e.deviceId)) parts.push(` · ${names.get(e.deviceId)}`);
    if (e.actor === "admin") parts.push(" · by an administrator");
    return el("li", { class: "event", "data-action": e.action },
      el("span", { class: e.outcome === "failure" ? "event-action failed" : "event-action" }, eventWords(e)),
      el("span", { class: "meta" }, ...parts));
  }));
  show($("events-none"), events.length === 0);
  const more = $("events-more");
  more.textContent = `Show all ${events.length}`;
  show(more, shown.length < events.length);
}

// Sign out, resend, change password, delete.
onClick($("signout"), async () => {
  busy = true;
  try {
    await sessionDestroy(token());
  } catch (err) {
    if (err.errno !== ERRNO.INVALID_TOKEN) { busy = false; throw err; }
  }
  signOutTab("signedout");
}, $("account-error"), gone);

onClick($("resend"), async () => {
  await resendCode(token());
  $("resend-status").textContent = "Sent. Check your inbox.";
  show($("resend-status"));
}, $("account-error"), (err) => gone(err) ||
  (err.errno === ERRNO.TOO_MANY_REQUESTS && new Error(`Too many emails were sent. ${tryAgain(err)}`)));

const disabledOnly = (err) => (err.errno === ERRNO.DISABLED ? gone(err) : false);

onSubmit($("change-password"), async (form, onProgress) => {
  const pw = form.get("new");
  check(
    ["old-password", form.get("old") !== "", "Enter your current password."],
    ["new-password", [...pw].length >= 8, pw ? "Use at least 8 characters." : "Choose a new password."],
    ["new-confirm", pw === form.get("confirm"), "The new passwords do not match."],
  );
  busy = true;
  try {
    const r = await changePassword(fromHex(s.email), form.get("old"), pw, onProgress);
    s = await establish(r.session, s.deviceName); // the same kB, re-wrapped for the new password
    location.assign("/account?notice=changed");
  } finally {
    busy = false;
  }
}, { fieldFor: (err) => (err.errno === ERRNO.INCORRECT_PASSWORD ? "old-password" : null), onError: disabledOnly });

onSubmit($("destroy"), async (form, onProgress) => {
  check(
    ["destroy-password", form.get("password") !== "", "Enter your password."],
    ["destroy-confirm", form.get("confirm") !== null, "Tick the box to confirm."],
  );
  busy = true;
  try {
    await destroyAccount(fromHex(s.email), form.get("password"), onProgress);
    signOutTab("destroyed");
  } catch (err) {
    busy = false;
    throw err;
  }
}, { fieldFor: (err) => (err.errno === ERRNO.INCORRECT_PASSWORD ? "destroy-password" : null), onError: disabledOnly });

// Start the stretching worker while the user types a password.
for (const id of ["change-password", "destroy"]) $(id).addEventListener("focusin", prepareStretching);

if (s?.sessionToken) {
  start().catch((err) => fail(err));
  watch();
}
