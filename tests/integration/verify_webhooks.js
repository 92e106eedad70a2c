// verify_webhooks.js: checks deliveries with the official Standard Webhooks
// package, so that hookcast's signatures are judged by someone else's code.
// Reads JSON on stdin: [{"secret": "whsec_..", "body_b64": "..", "headers":
// {"webhook-id": .., ...}}, ...]; writes one result per item: "ok", or the
// verifier's error message.
"use strict";
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((item) => {
    try {
      new Webhook(item.secret).verify(Buffer.from(item.body_b64, "base64"),
        item.headers, { jsonParse: false });
      return "ok";
    } catch (e) {
      return String(e && e.message ? e.message : e);
    }
  });
  process.stdout.write(JSON.stringify(results));
});
