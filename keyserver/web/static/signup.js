// Sign-up page: create the account, sign in without stretching again, then
// /account waits for the email verification.
import { createAccount, ERRNO, login, prepareStretching } from "./api.js";
import { establish } from "./session.js";
import { $, check, onSubmit } from "./ui.js";

onSubmit($("signup"), async (form, onProgress) => {
  const email = form.get("email").trim(), password = form.get("password");
  check(
    ["email", /^[^\s@]+@[^\s@]+$/.test(email), email ? "Enter a valid email address, like name@example.com." : "Enter your email address."],
    ["password", [...password].length >= 8, password ? "Use at least 8 characters." : "Choose a password."],
    ["confirm", password === form.get("confirm"), "The passwords do not match."],
  );
  const { known } = await createAccount(email, password, onProgress);
  await establish(await login(email, password, null, known));
  location.assign("/account");
}, {
  fieldFor: (err) => (err.errno === ERRNO.ACCOUNT_EXISTS || err.body?.param === "email" ? "email" : null),
});
$("email").focus();
prepareStretching();
