// Forgotten password: send_code, then verify_code and account/reset with a
// zero wrapKb (kB is replaced, kA kept), then sign in.
import { forgotResendCode, forgotReset, forgotSendCode, prepareStretching } from "./api.js";
import { fromUtf8 } from "./bytes.js";
import { establish } from "./session.js";
import { $, message, onSubmit, show } from "./ui.js";

let pending = null; // {email bytes, token seed}: memory only

function sent(r, what) {
  const mins = Math.ceil(r.ttl / 60);
  $("code-sent").textContent = `${what} to ${fromUtf8(pending.email)}. Enter the ${r.codeLength}-digit code ` +
    `within ${mins} minute${mins === 1 ? "" : "s"} (${r.tries} tries).`;
}

onSubmit($("forgot-email"), async (form) => {
  const r = await forgotSendCode(form.get("email").trim());
  pending = { email: r.email, token: r.token };
  sent(r, "We sent a code");
  show($("forgot-email"), false);
  show($("forgot-reset"));
  $("code").focus();
});

onSubmit($("forgot-reset"), async (form, onProgress) => {
  const pw = form.get("new");
  if (pw !== form.get("confirm")) throw new Error("The passwords do not match.");
  if ([...pw].length < 8) throw new Error("Use at least 8 characters.");
  const s = await forgotReset(pending.token, pending.email, form.get("code").trim(), pw, onProgress);
  pending = null;
  await establish(s);
  location.assign("/account?notice=reset");
});

$("resend-code").addEventListener("click", async () => {
  const error = $("forgot-reset").querySelector(".error");
  show(error, false);
  try {
    sent(await forgotResendCode(pending.token, pending.email), "We sent the code again");
  } catch (err) {
    error.textContent = message(err);
    show(error);
  }
});
prepareStretching();
