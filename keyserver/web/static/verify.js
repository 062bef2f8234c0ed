// Landing page of the verification link: /verify?uid=<hex32>&code=<hex32>
// (the default target of the mailed link). Success offers the way on (to
// the account page in the tab that signed up, else to sign-in); failure
// says in words what went wrong and what to do.
import { ERRNO, verifyCode } from "./api.js";
import { load } from "./session.js";
import { $, DISABLED, message, show, tryAgain } from "./ui.js";

const q = new URLSearchParams(location.search);
const uid = q.get("uid") || "", code = q.get("code") || "";
history.replaceState(null, "", "/verify"); // keep the code out of the history

function words(err) {
  switch (err?.errno) {
    case ERRNO.INVALID_CODE:
      return "This link is not valid. Use the link in the newest email we sent you, or sign in and ask for a new email.";
    case ERRNO.UNKNOWN_ACCOUNT:
      return "There is no account for this link any more. It may have been deleted, or not confirmed in time. You can create it again.";
    case ERRNO.INVALID_PARAM:
    case ERRNO.MISSING_PARAM:
      return "This link is incomplete. Open it from the email again, or copy the whole link into the address bar.";
    case ERRNO.DISABLED: return DISABLED;
    case ERRNO.TOO_MANY_REQUESTS: return `Too many attempts. ${tryAgain(err)}`;
  }
  return message(err);
}

async function run() {
  if (!/^[0-9a-fA-F]{32}$/.test(uid) || !/^[0-9a-fA-F]{32}$/.test(code)) {
    throw Object.assign(new Error("incomplete link"), { errno: ERRNO.INVALID_PARAM, body: {} });
  }
  await verifyCode(uid, code);
  $("verify-title").textContent = "Email address confirmed";
  $("verify-status").textContent = "Your email address is verified. Your account is ready to use.";
  const s = load();
  if (s?.uid === uid.toLowerCase()) {
    show($("verify-continue"));
  } else {
    $("signin-link").textContent = "Continue to sign in";
    show($("verify-signin"));
  }
  document.body.dataset.ready = "true";
}

run().catch((err) => {
  $("verify-title").textContent = "Your email address could not be confirmed";
  $("verify-status").textContent = "";
  $("verify-error").textContent = words(err);
  show($("verify-error"));
  show($("verify-signin"));
  if (err?.errno === ERRNO.UNKNOWN_ACCOUNT) show($("verify-signup"));
  document.body.dataset.ready = "true";
});
