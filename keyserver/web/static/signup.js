// Sign-up page: create the account, sign in without stretching again, then
// /account waits for the email verification.
import { createAccount, login, prepareStretching } from "./api.js";
import { establish } from "./session.js";
import { $, onSubmit } from "./ui.js";

onSubmit($("signup"), async (form, onProgress) => {
  const email = form.get("email").trim(), password = form.get("password");
  if (password !== form.get("confirm")) throw new Error("The passwords do not match.");
  if ([...password].length < 8) throw new Error("Use at least 8 characters.");
  const { known } = await createAccount(email, password, onProgress);
  await establish(await login(email, password, null, known));
  location.assign("/account");
});
$("email").focus();
prepareStretching();
