// Forgotten password: send_code, then verify_code and account/reset with a
// zero wrapKb (the server picks a new one; kA is kept), then sign in. A code
// that is used up (its last try spent, or expired) is replaced by a new one.
import { ERRNO, forgotResendCode, forgotReset, forgotSendCode, prepareStretching } from "./api.js";
import { fromUtf8 } from "./bytes.js";
import { establish } from "./session.js";
import { $, check, fillUsername, onClick, onSubmit, plural, show, tryAgain } from "./ui.js";

let pending = null; // {email bytes, token seed}: memory only
const resetError = () => $("forgot-reset").querySelector(".error");

function sent(r, what) {
  const mins = Math.ceil(r.ttl / 60);
  $("code-sent").textContent = `${what} to ${fromUtf8(pending.email)}. Enter the ${r.codeLength}-digit code ` +
    `within ${plural(mins, "minute", "minutes")}. You have ${plural(r.tries, "try", "tries")}.`;
  show($("code-sent"));
}

// mailWords: send_code and resend_code refusals in words.
function mailWords(err) {
  if (err.errno === ERRNO.TOO_MANY_REQUESTS) return new Error(`Too many codes were requested for this account. ${tryAgain(err)}`);
  return err;
}

async function sendCode(email, what) {
  const r = await forgotSendCode(email);
  pending = { email: r.email, token: r.token };
  fillUsername(fromUtf8(r.email));
  sent(r, what);
}

// usedUp: the code can no longer be used; the user can ask for a new one.
function usedUp(text) {
  const e = resetError();
  e.textContent = text;
  show(e);
  show($("code-sent"), false); // its "you have 3 tries" is over
  $("code").value = "";
  show($("resend-code"), false);
  show($("code-used"));
  $("new-code").focus();
}

onSubmit($("forgot-email"), async (form) => {
  const email = form.get("email").trim();
  check(["email", email !== "", "Enter your email address."]);
  await sendCode(email, "We sent a code");
  show($("forgot-email"), false);
  show($("forgot-reset"));
  $("code").focus();
}, {
  fieldFor: (err) => (err.errno === ERRNO.UNKNOWN_ACCOUNT || err.body?.param === "email" ? "email" : null),
  onError: mailWords,
});

onSubmit($("forgot-reset"), async (form, onProgress) => {
  const pw = form.get("new"), code = form.get("code").trim();
  check(
    ["code", /^[0-9]{8}$/.test(code), code ? "The code has 8 digits." : "Enter the code from the email."],
    ["new-password", [...pw].length >= 8, pw ? "Use at least 8 characters." : "Choose a new password."],
    ["new-confirm", pw === form.get("confirm"), "The passwords do not match."],
  );
  const s = await forgotReset(pending.token, pending.email, code, pw, onProgress);
  pending = null;
  await establish(s);
  location.assign("/account?notice=reset");
}, {
  fieldFor: (err) => (err.errno === ERRNO.INVALID_CODE || err.body?.param === "code" ? "code" : null),
  onError: (err) => {
    if (err.errno === ERRNO.INVALID_CODE && err.body.tries === 0) {
      usedUp("Wrong code, and that was the last try: this code is used up. Send a new code to try again.");
      return true;
    }
    if (err.errno === ERRNO.INVALID_TOKEN && err.path?.startsWith("/v1/password/forgot/")) {
      usedUp("This code is used up or has expired. Send a new code to try again.");
      return true;
    }
    return false;
  },
});

onClick($("resend-code"), async () => {
  sent(await forgotResendCode(pending.token, pending.email), "We sent the code again");
}, resetError(), (err) => {
  if (err.errno === ERRNO.INVALID_TOKEN) {
    usedUp("This code is used up or has expired. Send a new code to try again.");
    return true;
  }
  return mailWords(err);
});

onClick($("new-code"), async () => {
  await sendCode(fromUtf8(pending.email), "We sent a new code");
  show($("code-used"), false);
  show($("resend-code"));
  $("code").value = "";
  $("code").focus();
}, resetError(), mailWords);

prepareStretching();
