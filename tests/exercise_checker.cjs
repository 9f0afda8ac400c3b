// Runs the book's browser checker (book/_ext/exercises.js) under Node for the parity tests.
// Usage: node tests/exercise_checker.cjs DATA_JS < cases.json > verdicts.json
//   DATA_JS: the exported rules (d2l_attn.exercises.web.to_script), as the book build writes them
//   cases:   [{"id": "ch03-softmax-value", "text": "0.665", "wrong_before": 0}, ...]
//   output:  [{"status": ..., "message": ..., "hint": ...}, ...] in the same order
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const sandbox = {window: {}};
vm.runInNewContext(fs.readFileSync(process.argv[2], "utf8"), sandbox, {filename: process.argv[2]});
const {makeChecker} = require(path.join(__dirname, "..", "book", "_ext", "exercises.js"));
const checker = makeChecker(sandbox.window.D2L_ATTN_EXERCISES);

const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const out = cases.map((c) => {
  try {
    const fb = checker.check(c.id, c.text, c.wrong_before || 0);
    return {status: fb.status, message: fb.message, hint: fb.hint};
  } catch (e) {
    return {status: "crash", message: String(e && e.stack || e), hint: null};
  }
});
process.stdout.write(JSON.stringify(out));
