// Drives every operation of Herald's operational-webhook endpoints through
// the official Svix JS SDK, unchanged: node opwebhook.mjs <server URL>
// <admin token>. Prints what each step returned, as JSON, for the Go test
// to check; any SDK error ends the script with a non-zero status.
import { Svix } from "svix";

const [serverUrl, token] = process.argv.slice(2);
const ops = new Svix(token, { serverUrl }).operationalWebhookEndpoint;
const out = {};
out.created = await ops.create({
  url: "https://example.com/js-ops",
  uid: "js-ops",
  description: "from JS",
  filterTypes: ["endpoint.disabled"],
  metadata: { team: "sre" },
  rateLimit: 4,
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
});
out.got = await ops.get("js-ops");
out.list = await ops.list({ limit: 10 });
out.updated = await ops.update("js-ops", { url: "https://example.com/js-ops-2", filterTypes: ["endpoint.enabled"], disabled: true });
await ops.updateHeaders("js-ops", { headers: { "X-Team": "sre", Authorization: "Bearer x" } });
out.headers = await ops.getHeaders("js-ops");
await ops.rotateSecret("js-ops", { key: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD" });
out.secret = await ops.getSecret("js-ops");
await ops.delete("js-ops");
try {
  await ops.get("js-ops");
  out.afterDelete = "found";
} catch (e) {
  out.afterDelete = e.code;
}
console.log(JSON.stringify(out));
