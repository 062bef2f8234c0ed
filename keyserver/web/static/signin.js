// Sign-in page: stretch, SRP, session/create, keys, device; then /account.
// A blocked sign-in (125) offers an unblock code by email (spec 14.3).
import { ERRNO, login, prepareStretching, sendUnblockCode } from "./api.js";
import { establish, load } from "./session.js";
import { $, check, DISABLED, FieldError, notice, onClick, onSubmit, show } from "./ui.js";

if (load()?.sessionToken) location.replace("/account");

const signedOut = { text: "This device was signed out. Sign in again to continue.", warn: true };
notice($("notice"), {
  signedout: "You are signed out.",
  revoked: signedOut,
  ended: signedOut,
  disabled: { text: `${DISABLED} This device was signed out.`, warn: true },
  destroyed: "Your account has been deleted.",
});

const email = () => $("email").value.trim();
const unblocking = () => !$("unblock").hidden && !$("unblock-entry").hidden;

function blocked() {
  $("unblock-text").textContent = "Signing in from here is paused for your safety, because someone entered many wrong " +
    "passwords for this account. We can email you a code to continue.";
  show($("unblock"));
  show($("unblock-entry"), false);
  $("unblock-send").focus();
}

onSubmit($("signin"), async (form, onProgress) => {
  const code = unblocking() ? form.get("unblockCode").trim() : "";
  check(
    ["email", email() !== "", "Enter your email address."],
    ["password", form.get("password") !== "", "Enter your password."],
    ["unblock-code", !unblocking() || /^[0-9]{8}$/.test(code), "Enter the 8-digit code from the email."],
  );
  const s = await login(email(), form.get("password"), onProgress, null, code || undefined);
  show($("unblock"), false);
  await establish(s);
  location.assign("/account");
}, {
  fieldFor: (err) => {
    if (err.errno === ERRNO.UNKNOWN_ACCOUNT) return "email";
    if (err.errno === ERRNO.INCORRECT_PASSWORD) return "password";
    if (err.errno === ERRNO.INVALID_PARAM || err.errno === ERRNO.MISSING_PARAM) {
      if (err.body.param === "email") return "email";
      if (err.body.param === "unblockCode") return "unblock-code";
    }
    return null;
  },
  onError: (err) => {
    if (err.errno !== ERRNO.REQUEST_BLOCKED) return false;
    if (unblocking()) { // the code did not lift the block
      return new FieldError("unblock-code", "That code is not right, or it has expired. Check the newest email, or send a new code.");
    }
    blocked();
    return true;
  },
});

onClick($("unblock-send"), async () => {
  check(["email", email() !== "", "Enter your email address."]);
  await sendUnblockCode(email());
  const st = $("unblock-status");
  st.textContent = `We sent a code to ${email()}. It is valid for an hour.`;
  show(st);
  show($("unblock-entry"));
  $("unblock-code").value = "";
  $("unblock-code").focus();
}, $("signin").querySelector(".error"), (err) => {
  if (err.status === 404) { // a server without unblock codes yet
    const e = $("signin").querySelector(".error");
    e.textContent = "This server cannot send unblock codes. Try again later, or set a new password with “Forgot your password?”.";
    show(e);
    return true;
  }
  return false;
});

prepareStretching();
