// Sign-in page: stretch, SRP, session/create, keys, device; then /account.
import { login, prepareStretching } from "./api.js";
import { defaultDeviceName, establish, load } from "./session.js";
import { $, notice, onSubmit } from "./ui.js";

if (load()?.sessionToken) location.replace("/account");

notice($("notice"), {
  signedout: "You are signed out.",
  ended: "Your session has ended (this device was signed out). Sign in again.",
  destroyed: "Your account has been deleted.",
});
$("device").placeholder = defaultDeviceName();

onSubmit($("signin"), async (form, onProgress) => {
  const s = await login(form.get("email"), form.get("password"), onProgress);
  await establish(s, form.get("device").trim());
  location.assign("/account");
});
prepareStretching();
