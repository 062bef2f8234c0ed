// Forgotten password: send_code, then verify_code (an accountResetToken),
// optionally a recovery key (docs/recovery-key.md RK.5: its id gets the
// recoveryData, which gives back kB), and account/reset: with the
// recovered kB wrapped under the new password, or with a zero wrapKb (the
// server picks a new one; kA is kept). Then sign in. A code that is used up
// (its last try spent, or expired) is replaced by a new one.
import {
  ERRNO, forgotResendCode, forgotSendCode, forgotVerifyCode, prepareStretching, recoveryKeyData, resetPassword,
} from "./api.js";
import { fromUtf8 } from "./bytes.js";
import { openData, parseKey, RecoveryKeyError, recoveryKeyId } from "./recoverykey.js";
import { establish } from "./session.js";
import { $, check, clearFieldError, FieldError, fillUsername, Invalid, onClick, onSubmit, plural, show, tryAgain } from "./ui.js";

// pending: {email bytes, token seed, accountResetToken once the code is
// accepted}: memory only.
let pending = null;
const resetError = () => $("forgot-reset").querySelector(".error");
const usingKey = () => $("have-recovery-key").checked;

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

// codeAccepted: the code gave an accountResetToken (kept for another try
// with a recovery key); the code field is done with.
function codeAccepted(accountResetToken) {
  pending.accountResetToken = accountResetToken;
  show($("code-entry"), false);
  show($("resend-code"), false);
  $("code-sent").textContent = "The code from the email is accepted.";
  show($("code-sent"));
}

// codeAgain: back to entering a code (a new one is on its way).
function codeAgain() {
  if (pending) delete pending.accountResetToken;
  show($("code-entry"));
  show($("resend-code"));
}

// usedUp: the code can no longer be used; the user can ask for a new one.
function usedUp(text) {
  const e = resetError();
  e.textContent = text;
  show(e);
  show($("code-sent"), false); // its "you have 3 tries" is over
  if (pending) delete pending.accountResetToken;
  show($("code-entry"));
  $("code").value = "";
  show($("resend-code"), false);
  show($("code-used"));
  $("new-code").focus();
}

// The recovery key: its field and the words around it follow the box.
function recoveryShown() {
  const on = usingKey();
  show($("recovery-entry"), on);
  show($("no-recovery"), false);
  $("recovery-loss").textContent = on
    ? "With your recovery key, your most private data is kept. Setting the new password uses the key up: make a new one once you are signed in."
    : "Without a recovery key, your most private data, which only your old password could unlock, is lost when you set the new password.";
  if (!on) clearFieldError($("recovery-key"));
}
$("have-recovery-key").addEventListener("change", recoveryShown);

// recoverKB: the kB that the typed recovery key gets back (RK.5 steps 1
// and 2); failures are errors of the field.
async function recoverKB(R, accountResetToken) {
  let d;
  try {
    d = await recoveryKeyData(accountResetToken, await recoveryKeyId(R));
  } catch (err) {
    if (err.errno === ERRNO.INVALID_RECOVERY_KEY) {
      throw new FieldError("recovery-key", "This recovery key does not belong to this account. Check that it is the newest one you made for this email address. Nothing was changed.");
    }
    if (err.errno === ERRNO.NO_RECOVERY_KEY) {
      show($("no-recovery"));
      throw new FieldError("recovery-key", "This account has no recovery key: it was deleted, or used by an earlier password reset. You can set the new password without it, but then your most private data is lost.");
    }
    throw err;
  }
  try {
    return await openData(R, d.uid, d.recoveryData);
  } catch {
    show($("no-recovery"));
    throw new FieldError("recovery-key", "Your data could not be unlocked with this recovery key, so nothing was changed. You can set the new password without it, but then your most private data is lost.");
  }
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
  const typed = usingKey() ? form.get("recoveryKey") : "";
  const errors = [];
  try {
    check(
      ["code", pending.accountResetToken || /^[0-9]{8}$/.test(code), code ? "The code has 8 digits." : "Enter the code from the email."],
    );
  } catch (err) { errors.push(...err.errors); }
  // The recovery key is read here, before anything is sent (RK.1).
  let R = null;
  if (usingKey()) {
    if (typed.trim() === "") {
      errors.push(new FieldError("recovery-key", "Enter your recovery key, or untick “I have a recovery key”."));
    } else {
      try {
        R = await parseKey(typed);
      } catch (err) {
        if (!(err instanceof RecoveryKeyError)) throw err;
        errors.push(new FieldError("recovery-key", err.message));
      }
    }
  }
  try {
    check(
      ["new-password", [...pw].length >= 8, pw ? "Use at least 8 characters." : "Choose a new password."],
      ["new-confirm", pw === form.get("confirm"), "The passwords do not match."],
    );
  } catch (err) { errors.push(...err.errors); }
  if (errors.length) throw new Invalid(errors);

  if (!pending.accountResetToken) codeAccepted(await forgotVerifyCode(pending.token, code));
  let kB = null;
  try {
    if (R) kB = await recoverKB(R, pending.accountResetToken);
    const s = await resetPassword(pending.accountResetToken, pending.email, pw, kB, onProgress);
    pending = null;
    await establish(s);
    location.assign(kB ? "/account?notice=recovered" : "/account?notice=reset");
  } finally {
    R?.fill(0);
    kB?.fill(0);
  }
}, {
  fieldFor: (err) => (err.errno === ERRNO.INVALID_CODE || err.body?.param === "code" ? "code" : null),
  onError: (err) => {
    if (err.errno === ERRNO.INVALID_CODE && err.body.tries === 0) {
      usedUp("Wrong code, and that was the last try: this code is used up. Send a new code to try again.");
      return true;
    }
    if (err.errno === ERRNO.INVALID_TOKEN && (err.path?.startsWith("/v1/password/forgot/") ||
        err.path === "/v1/recoveryKey/data" || err.path === "/v1/account/reset")) {
      usedUp("This code is used up or has expired. Send a new code to try again.");
      return true;
    }
    return false;
  },
});

onClick($("continue-without"), async () => {
  $("have-recovery-key").checked = false;
  recoveryShown();
  $("forgot-reset").requestSubmit();
}, resetError());

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
  codeAgain();
  $("code").value = "";
  $("code").focus();
}, resetError(), mailWords);

recoveryShown();
prepareStretching();
