// Asks Herald for an app-portal link through the official Svix JS SDK,
// unchanged: node portal.mjs <server URL> <admin token> <app ID or uid>.
// Prints the SDK's AppPortalAccessOut as JSON.
import { Svix } from "svix";

const [serverUrl, token, app] = process.argv.slice(2);
const svix = new Svix(token, { serverUrl });
const out = await svix.authentication.appPortalAccess(app, { sessionId: "js-sdk" });
console.log(JSON.stringify(out));
